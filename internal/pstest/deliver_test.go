// Tests of the patches (PATCHES.md); not part of pstest v2.8.1.

package pstest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// TestDeliverWithoutRoom checks that deliver leaves a backlog alone, and
// does no work for it, while no stream can take a batch; and that a stream
// with room then gets one.
func TestDeliverWithoutRoom(t *testing.T) {
	var mu sync.Mutex
	top := newTopic(&pb.Topic{Name: "projects/p/topics/t"})
	sub := newSubscription(top, &mu, time.Now, nil, &pb.Subscription{Name: "projects/p/subscriptions/s", Topic: "projects/p/topics/t"})
	for i := range 5000 {
		id := fmt.Sprint(i)
		var d, a int
		m := newMessage(&pb.PubsubMessage{MessageId: id, Data: []byte("x")}, &Message{ID: id, deliveries: d, acks: a})
		m.publishTime = time.Now()
		sub.msgs[id] = m
		sub.enqueue(m)
	}
	st := &stream{done: make(chan struct{}), msgc: make(chan []*pb.ReceivedMessage, 1), ackTimeout: time.Minute}
	st.msgc <- nil // busy: its one slot is taken
	sub.streams = []*stream{st}

	if allocs := testing.AllocsPerRun(100, sub.deliver); allocs != 0 {
		t.Errorf("deliver with no stream to take a batch: %.0f allocations a call, want 0", allocs)
	}
	if got := len(sub.ready) - sub.head; got != 5000 {
		t.Fatalf("queued after deliver without room: %d, want 5000", got)
	}

	<-st.msgc // the stream sent what it had
	sub.deliver()
	select {
	case rms := <-st.msgc:
		if len(rms) != maxBatchMessages {
			t.Errorf("batch of %d messages, want %d", len(rms), maxBatchMessages)
		}
	default:
		t.Fatal("a stream with room got no batch")
	}
	if got := len(sub.leased); got != maxBatchMessages {
		t.Errorf("leased after one batch: %d, want %d", got, maxBatchMessages)
	}
}
