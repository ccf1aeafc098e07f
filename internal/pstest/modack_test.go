package pstest

import (
	"context"
	"sync"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// TestModAckAfterExpiry: a lease extension that arrives after the lease
// expired (the message already requeued behind others) leases the message
// again; when the holder then goes away without acknowledging, it is
// redelivered once the extension passes, not held for ever undelivered.
func TestModAckAfterExpiry(t *testing.T) {
	ctx := context.Background()
	s := NewServer()
	defer s.Close()
	var mu sync.Mutex
	now := time.Now()
	s.SetTimeNowFunc(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
		time.Sleep(50 * time.Millisecond) // let the lease scan run
	}
	top, err := s.GServer.CreateTopic(ctx, &pb.Topic{Name: "projects/p/topics/t"})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := s.GServer.CreateSubscription(ctx, &pb.Subscription{Name: "projects/p/subscriptions/s", Topic: top.Name, AckDeadlineSeconds: 10})
	if err != nil {
		t.Fatal(err)
	}
	a := s.Publish(top.Name, []byte("A"), nil)
	b := s.Publish(top.Name, []byte("B"), nil)
	pull := func() []*pb.ReceivedMessage {
		t.Helper()
		r, err := s.GServer.Pull(ctx, &pb.PullRequest{Subscription: sub.Name, MaxMessages: 1, ReturnImmediately: true})
		if err != nil {
			t.Fatal(err)
		}
		return r.ReceivedMessages
	}
	r := pull()
	if len(r) != 1 || r[0].Message.MessageId != a {
		t.Fatalf("first pull: %v, want A", r)
	}
	ackA := r[0].AckId
	advance(11 * time.Second) // A's lease expires: it is requeued behind B
	r = pull()
	if len(r) != 1 || r[0].Message.MessageId != b {
		t.Fatalf("second pull: %v, want B", r)
	}
	if _, err := s.GServer.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: sub.Name, AckIds: []string{r[0].AckId}}); err != nil {
		t.Fatal(err)
	}
	// The holder of A extends its lease late, then goes away.
	if _, err := s.GServer.ModifyAckDeadline(ctx, &pb.ModifyAckDeadlineRequest{Subscription: sub.Name, AckIds: []string{ackA}, AckDeadlineSeconds: 60}); err != nil {
		t.Fatal(err)
	}
	if r := pull(); len(r) != 0 {
		t.Fatalf("A delivered again within its extended lease: %v", r)
	}
	for range 5 {
		advance(10 * time.Minute)
		if r = pull(); len(r) > 0 {
			if r[0].Message.MessageId != a {
				t.Fatalf("redelivered %v, want A", r)
			}
			return
		}
	}
	t.Errorf("A was never delivered again after its extended lease passed; the server still holds %d messages", len(s.Messages()))
}
