package history

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/internal/testutil/pubsubtest"
	"github.com/bqobserver/bqobserver/schema"
)

// feed is the sink's path as the service runs it: the appender writes
// events to the log and publishes them on the events topic, and a Shared
// consumer on the history subscription hands them to the sink, under the
// product's one retry and dead-letter policy.
type feed struct {
	t   testing.TB
	ps  *pubsubtest.Server
	top schema.PubSub
	app *bus.Appender
}

// startFeed sets up the Pub/Sub topology (pstest, or the emulator when
// PUBSUB_EMULATOR_HOST is set) and runs a consumer of the history
// subscription feeding handle until the test ends.
func startFeed(t testing.TB, log *events.Log, handle func(context.Context, events.Event) error) *feed {
	t.Helper()
	ps := pubsubtest.New(t)
	f := &feed{t: t, ps: ps, top: schema.PubSub{Project: ps.Project, AuditTopic: "audit", EventsTopic: "events",
		DeadLetterTopic: "dead", IngestSubscription: "ingest", DeadLetterSubscription: "dead",
		HistorySubscription: "history", MinBackoff: time.Second, MaxBackoff: 2 * time.Second}}
	if err := schema.ApplyPubSub(t.Context(), ps.Client, f.top); err != nil {
		t.Fatal(err)
	}
	app, err := bus.NewAppender(bus.AppenderConfig{Topic: f.top.EventsTopic}, log, ps.Client, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close(context.Background()) })
	f.app = app
	rs := pubsub.DefaultReceiveSettings
	rs.MaxOutstandingMessages = 2000
	rs.NumGoroutines = 4
	bps := bus.PubSub{Client: ps.Client, Options: ps.Options, Receive: rs}
	logger := slog.New(slog.DiscardHandler)
	pub, err := bps.Publisher(logger)
	if err != nil {
		t.Fatal(err)
	}
	c, err := bus.NewConsumer(
		bus.ConsumerConfig{Name: "history-test", Topic: f.top.EventsTopic, Mode: bus.Shared, Subscription: f.top.HistorySubscription,
			DeadLetterTopic: f.top.DeadLetterTopic,
			Retry:           bus.RetryConfig{MaxRetries: 3, InitialInterval: 50 * time.Millisecond, MaxInterval: 200 * time.Millisecond}},
		bus.ConsumerDeps{PubSub: bps, Publisher: pub, Logger: logger, Handle: handle})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		closeCtx, done := context.WithTimeout(context.Background(), 20*time.Second)
		defer done()
		c.Close(closeCtx)
		<-ran
		pub.Close()
	})
	return f
}

// append appends evs through the appender, in batches as ingest would.
func (f *feed) append(evs []events.Event) {
	f.t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := 0; i < len(evs); i += 20 {
		batch := evs[i:min(i+20, len(evs))]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f.app.Append(context.Background(), batch); err != nil {
				f.t.Errorf("appending: %v", err)
			}
		})
	}
	wg.Wait()
}

// redelivered returns evs, each one to three times, shuffled, as a sink
// that delivers at least once and out of order would.
func redelivered(evs []events.Event, seed uint64) []events.Event {
	r := rand.New(rand.NewPCG(seed, seed))
	var out []events.Event
	for _, e := range evs {
		for range 1 + r.IntN(3) {
			out = append(out, e)
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// deadLetters receives what reached the dead-letter topic until nothing
// more comes for quiet, and returns, by event id, the reason and error text
// of the message that carried each event.
func (f *feed) deadLetters(quiet time.Duration) map[string][2]string {
	f.t.Helper()
	got := map[string][2]string{}
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(f.t.Context())
	defer cancel()
	last := time.Now()
	go func() {
		for ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			if time.Since(last) > quiet {
				cancel()
			}
			mu.Unlock()
		}
	}()
	err := f.ps.Client.Subscriber(f.top.DeadLetterSubscription).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		evs, err := events.UnmarshalMessages(m.Data)
		if err != nil {
			f.t.Errorf("a dead letter is not a message of events: %v", err)
			return
		}
		for _, e := range evs {
			got[e.ID] = [2]string{m.Attributes[bus.MetaReason], m.Attributes["reason_poisoned"]}
		}
		last = time.Now()
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return got
}
