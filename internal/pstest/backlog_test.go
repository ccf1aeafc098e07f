// Tests and benchmarks of the patches (PATCHES.md); not part of pstest
// v2.8.1.

package pstest_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	upstream "cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/bqobserver/bqobserver/internal/pstest"
)

const (
	project   = "projects/p"
	topicName = project + "/topics/t"
	subName   = project + "/subscriptions/s"
)

// server is what the tests need of either pstest.
type server interface {
	Close() error
}

func newClient(t testing.TB, addr string) *pubsub.Client {
	t.Helper()
	c, err := pubsub.NewClient(context.Background(), "p", option.WithEndpoint(addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// setUp creates the topic and one subscription.
func setUp(t testing.TB, c *pubsub.Client) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: topicName}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pb.Subscription{Name: subName, Topic: topicName, AckDeadlineSeconds: 60}); err != nil {
		t.Fatal(err)
	}
}

// publish publishes n messages of size bytes and waits for them all.
func publish(t testing.TB, c *pubsub.Client, n, size int) []string {
	t.Helper()
	p := c.Publisher(topicName)
	defer p.Stop()
	data := make([]byte, size)
	results := make([]*pubsub.PublishResult, n)
	for i := range results {
		results[i] = p.Publish(context.Background(), &pubsub.Message{Data: data, Attributes: map[string]string{"i": fmt.Sprint(i)}})
	}
	ids := make([]string, n)
	for i, r := range results {
		id, err := r.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

// receive acknowledges messages until n distinct ones arrived, and returns
// how many deliveries that took.
func receive(t testing.TB, c *pubsub.Client, n int) (deliveries int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var mu sync.Mutex
	seen := map[string]bool{}
	var count atomic.Int64
	sub := c.Subscriber(subName)
	sub.ReceiveSettings.NumGoroutines = 4
	sub.ReceiveSettings.MaxOutstandingMessages = 2000
	err := sub.Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		count.Add(1)
		mu.Lock()
		defer mu.Unlock()
		seen[m.ID] = true
		if len(seen) == n {
			cancel()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("received %d distinct messages before the deadline, want %d", len(seen), n)
	}
	return int(count.Load())
}

// TestBacklogDelivered checks that a backlog is delivered in full, each
// message once, and that the server forgets the messages once they are
// acknowledged.
func TestBacklogDelivered(t *testing.T) {
	srv := pstest.NewServer()
	defer srv.Close()
	c := newClient(t, srv.Addr)
	setUp(t, c)
	const n = 20_000
	publish(t, c, n, 100)
	if got := len(srv.Messages()); got != n {
		t.Fatalf("server holds %d messages before delivery, want %d", got, n)
	}
	if got := receive(t, c, n); got != n {
		t.Errorf("delivered %d times, want each of the %d messages once", got, n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(srv.Messages()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // the last acknowledgements are in flight
	}
	if got := len(srv.Messages()); got != 0 {
		t.Errorf("server holds %d messages after every one was acknowledged, want none", got)
	}
}

// TestNoSubscriptionKeepsNothing checks that a message published to a topic
// without subscriptions is not kept (upstream keeps every message ever
// published).
func TestNoSubscriptionKeepsNothing(t *testing.T) {
	srv := pstest.NewServer()
	defer srv.Close()
	srv.Publish(topicName, []byte("x"), nil)
	if got := srv.Messages(); len(got) != 0 {
		t.Errorf("server holds %d messages of a topic without subscriptions, want none", len(got))
	}
}

// BenchmarkBacklog measures how fast one subscriber drains a backlog of
// b.N messages (1 KiB each) through the Go client, on this fork and on
// upstream pstest v2.8.1. Upstream rescans every unacked message on every
// delivery pass, so its rate falls as the backlog grows; run with
// -benchtime 2000x, 10000x and 40000x to see it.
func BenchmarkBacklog(b *testing.B) {
	for _, impl := range []struct {
		name  string
		start func() (server, string)
	}{
		{"fork", func() (server, string) { s := pstest.NewServer(); return s, s.Addr }},
		{"upstream", func() (server, string) { s := upstream.NewServer(); return s, s.Addr }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			srv, addr := impl.start()
			defer srv.Close()
			c := newClient(b, addr)
			setUp(b, c)
			publish(b, c, b.N, 1024)
			b.ResetTimer()
			start := time.Now()
			receive(b, c, b.N)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// TestDeletedSubscriptionEndsReceive checks that deleting a subscription
// ends the streams pulling from it with NotFound, as Pub/Sub does, so that a
// subscriber notices instead of waiting forever.
func TestDeletedSubscriptionEndsReceive(t *testing.T) {
	srv := pstest.NewServer()
	defer srv.Close()
	c := newClient(t, srv.Addr)
	setUp(t, c)
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		errc <- c.Subscriber(subName).Receive(context.Background(), func(_ context.Context, m *pubsub.Message) { m.Ack() })
	}()
	<-started
	time.Sleep(500 * time.Millisecond) // let the streams open
	if err := c.SubscriptionAdminClient.DeleteSubscription(context.Background(), &pb.DeleteSubscriptionRequest{Subscription: subName}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if status.Code(err) != codes.NotFound {
			t.Errorf("Receive ended with %v, want NotFound", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Receive did not end within 30s of its subscription's deletion")
	}
}

// TestPingWhileStreamBlocked opens a stream that never reads, fills it
// with messages until the server's sends to it block, and pings on it, as
// the client library does every 30 seconds: the server must go on serving
// other calls. (Upstream answered the ping holding the server's lock, and
// every call then waited for a stream nobody read.)
func TestPingWhileStreamBlocked(t *testing.T) {
	srv := pstest.NewServer()
	defer srv.Close()
	c := newClient(t, srv.Addr)
	setUp(t, c)
	publish(t, c, 200, 100<<10) // 20 MB: more than the stream's flow-control windows
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := pb.NewSubscriberClient(conn).StreamingPull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.StreamingPullRequest{Subscription: subName, StreamAckDeadlineSeconds: 60, ProtocolVersion: 1}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the server sends until the windows are full
	if err := stream.Send(&pb.StreamingPullRequest{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the ping reaches the server
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer pcancel()
	if _, err := c.TopicAdminClient.Publish(pctx, &pb.PublishRequest{Topic: topicName, Messages: []*pb.PubsubMessage{{Data: []byte("x")}}}); err != nil {
		t.Errorf("publishing while a stream is blocked and pinged: %v", err)
	}
}
