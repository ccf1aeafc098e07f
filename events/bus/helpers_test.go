package bus

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"google.golang.org/grpc"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/internal/testutil/pubsubtest"
)

const (
	eventsTopic = "bqobserver-events"
	deadTopic   = "dead-letter"
	deadSub     = "dead-letter"
)

// fixture is a Pub/Sub (emulator or pstest) with the events and
// dead-letter topics, and a dead-letter subscription.
type fixture struct {
	t  testing.TB
	ps *pubsubtest.Server
	// deadErrors are the errors of the dead letters deadLetters received,
	// by payload.
	deadErrors map[string]string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, ps: pubsubtest.New(t)}
	f.topic(eventsTopic)
	f.topic(deadTopic)
	f.subscription(deadSub, deadTopic)
	return f
}

func (f *fixture) topic(id string) {
	f.t.Helper()
	_, err := f.ps.Client.TopicAdminClient.CreateTopic(f.t.Context(), &pubsubpb.Topic{Name: "projects/" + f.ps.Project + "/topics/" + id})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) subscription(id, topic string) {
	f.t.Helper()
	_, err := f.ps.Client.SubscriptionAdminClient.CreateSubscription(f.t.Context(), &pubsubpb.Subscription{
		Name:  "projects/" + f.ps.Project + "/subscriptions/" + id,
		Topic: "projects/" + f.ps.Project + "/topics/" + topic, AckDeadlineSeconds: 60,
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// subscriptionExists reports whether the subscription id exists.
func (f *fixture) subscriptionExists(id string) bool {
	f.t.Helper()
	subs := f.ps.Client.SubscriptionAdminClient.ListSubscriptions(f.t.Context(),
		&pubsubpb.ListSubscriptionsRequest{Project: "projects/" + f.ps.Project})
	for {
		s, err := subs.Next()
		if err != nil {
			return false
		}
		if s.GetName() == "projects/"+f.ps.Project+"/subscriptions/"+id {
			return true
		}
	}
}

func (f *fixture) bus() PubSub {
	return PubSub{Client: f.ps.Client, Options: f.ps.Options, Receive: pubsub.DefaultReceiveSettings}
}

// publisher is a Watermill publisher for dead letters, closed with the test.
func (f *fixture) publisher() message.Publisher {
	f.t.Helper()
	pub, err := f.bus().Publisher(discard())
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { pub.Close() })
	return pub
}

// publish publishes payloads to topic and waits until Pub/Sub has them.
func (f *fixture) publish(topic string, payloads ...[]byte) {
	f.t.Helper()
	p := f.ps.Client.Publisher(topic)
	defer p.Stop()
	for _, d := range payloads {
		if _, err := p.Publish(f.t.Context(), &pubsub.Message{Data: d}).Get(f.t.Context()); err != nil {
			f.t.Fatal(err)
		}
	}
}

// receive acknowledges messages from sub until n have arrived and then
// nothing more for a moment, or until a deadline.
func (f *fixture) receive(sub string, n int) []*pubsub.Message {
	f.t.Helper()
	return f.receiveUntil(sub, func(got []*pubsub.Message) bool { return len(got) >= n })
}

// receiveUntil acknowledges messages from sub until enough says they are
// enough and then nothing more arrives for a moment, or until a deadline.
func (f *fixture) receiveUntil(sub string, enough func([]*pubsub.Message) bool) []*pubsub.Message {
	f.t.Helper()
	var mu sync.Mutex
	var got []*pubsub.Message
	ctx, cancel := context.WithTimeout(f.t.Context(), 30*time.Second)
	defer cancel()
	last := time.Now()
	go func() {
		for ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			if enough(got) && time.Since(last) > 300*time.Millisecond {
				cancel()
			}
			mu.Unlock()
		}
	}()
	err := f.ps.Client.Subscriber(sub).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		got, last = append(got, m), time.Now()
		mu.Unlock()
	})
	if err != nil {
		f.t.Fatalf("receiving from %s: %v", sub, err)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}

// deadLetters receives n dead letters and maps each payload to its reason.
func (f *fixture) deadLetters(n int) map[string]string {
	f.t.Helper()
	got := map[string]string{}
	f.deadErrors = map[string]string{}
	for _, m := range f.receive(deadSub, n) {
		got[string(m.Data)] = m.Attributes[MetaReason]
		f.deadErrors[string(m.Data)] = m.Attributes[middleware.ReasonForPoisonedKey]
	}
	return got
}

// hang makes the Bigtable client's writes block until their context ends
// while on, the way a Bigtable that accepts connections but never answers
// does; calls counts the writes that hung.
type hang struct {
	on    atomic.Bool
	calls atomic.Int64
}

func (h *hang) dialOption() grpc.DialOption {
	return grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if h.on.Load() && method == "/google.bigtable.v2.Bigtable/MutateRows" {
			h.calls.Add(1)
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return streamer(ctx, desc, cc, method, opts...)
	})
}

// newLog returns an event log in a Bigtable (emulator or bttest) of the
// test's own.
func newLog(t *testing.T, dial ...grpc.DialOption) *events.Log {
	t.Helper()
	bt := logtest.NewBigtable(t, dial...)
	l, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// logged returns every event in l.
func logged(t *testing.T, l *events.Log) []events.Event {
	t.Helper()
	var evs []events.Event
	err := l.Range(t.Context(), time.Unix(0, 0), time.Now().AddDate(10, 0, 0), func(e events.Event) error {
		evs = append(evs, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// jobEvents returns n events of n jobs, named with prefix, in time order.
func jobEvents(prefix string, n int) []events.Event {
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = events.Event{
			ID: fmt.Sprintf("%s-%04d", prefix, i), Kind: events.KindInserted, State: events.StateRunning,
			Job:    events.JobKey{Project: "acme", Location: "US", JobID: fmt.Sprintf("%s_%04d", prefix, i)},
			Time:   t0.Add(time.Duration(i) * time.Millisecond),
			Facts:  events.Facts{Principal: "ann@example.com", Query: "SELECT 1"},
			Source: events.Source{Format: "v2"},
		}
	}
	return evs
}

// payload is e as the events topic carries it.
func payload(t testing.TB, e events.Event) []byte {
	t.Helper()
	b, _, err := events.MarshalMessage(&e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// logBuffer is a logger whose records a test can read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(b, nil)) }

// waitUntil polls cond until it holds or a deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
