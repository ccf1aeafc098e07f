package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/bigtable"
	"cloud.google.com/go/pubsub/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/internal/testutil/pubsubtest"
	"github.com/bqobserver/bqobserver/schema"
)

// Topology names used by every pipeline test (each test has its own
// project, so they never collide on a shared emulator).
const (
	auditTopic  = "bq-audit"
	eventsTopic = "bqobserver-events"
	deadTopic   = "bq-audit-dead-letter"
	ingestSub   = "bqobserver-ingest"
	deadSub     = "bq-audit-dead-letter"
	eventsSub   = "events-check"
)

// faults makes the Bigtable client's calls fail with Unavailable while on,
// the way an unreachable Bigtable does; it wraps the real client's
// connection, so everything else is the real client.
type faults struct{ on atomic.Bool }

func (f *faults) dialOptions() []grpc.DialOption {
	fail := func(method string) error {
		if f.on.Load() {
			return status.Errorf(codes.Unavailable, "injected: Bigtable unavailable (%s)", method)
		}
		return nil
	}
	return []grpc.DialOption{
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			if err := fail(method); err != nil {
				return nil, err
			}
			return streamer(ctx, desc, cc, method, opts...)
		}),
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if err := fail(method); err != nil {
				return err
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
	}
}

// bigtableFor connects to the Bigtable at addr, or else to the emulator
// named by BIGTABLE_EMULATOR_HOST, or else to a new bttest server, with a
// table of the test's own.
func bigtableFor(t testing.TB, addr string, f *faults) *logtest.Bigtable {
	t.Helper()
	if addr != "" {
		return logtest.Open(t, addr, f.dialOptions()...)
	}
	return logtest.NewBigtable(t, f.dialOptions()...)
}

// harness runs a pipeline on a Pub/Sub (emulator or pstest) and a Bigtable
// (emulator or bttest) of the test's own.
type harness struct {
	t        testing.TB
	ps       *pubsubtest.Server
	log      *events.Log
	appender *bus.Appender
	pipe     *Pipeline
	faults   *faults
	table    string
	admin    *bigtable.AdminClient
	done     chan error
	reg      *prometheus.Registry
}

type harnessOpts struct {
	pull          bool
	later         bool // do not start the pipeline; the test calls start
	bigtableAddr  string
	cfg           Config
	appendTimeout time.Duration // the appender's write timeout; 0: its default
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	h := &harness{t: t, ps: pubsubtest.New(t), faults: &faults{}, done: make(chan error, 1)}
	top := schema.PubSub{Project: h.ps.Project, AuditTopic: auditTopic, EventsTopic: eventsTopic, DeadLetterTopic: deadTopic,
		IngestSubscription: ingestSub, DeadLetterSubscription: deadSub, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	if err := schema.ApplyPubSub(t.Context(), h.ps.Client, top); err != nil {
		t.Fatal(err)
	}
	h.subscribeEvents()
	bt := bigtableFor(t, o.bigtableAddr, h.faults)
	h.admin, h.table = bt.Admin, bt.Table
	var err error
	if h.log, err = events.NewLog(bt.Client, events.LogConfig{Table: bt.Table}); err != nil {
		t.Fatal(err)
	}
	if !o.later {
		h.start(o)
	}
	return h
}

// subscribeEvents attaches a subscription to the events topic, so that a
// test can read what the pipeline published.
func (h *harness) subscribeEvents() {
	_, err := h.ps.Client.SubscriptionAdminClient.CreateSubscription(h.t.Context(), subscription(h.ps.Project, eventsSub, eventsTopic))
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) start(o harnessOpts) {
	t := h.t
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ps := bus.PubSub{Client: h.ps.Client, Options: h.ps.Options,
		Receive: pubsub.ReceiveSettings{MaxOutstandingMessages: 1000, NumGoroutines: 16}}
	pub, err := ps.Publisher(logger)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	h.reg = reg
	if h.appender, err = bus.NewAppender(bus.AppenderConfig{Topic: eventsTopic, Timeout: o.appendTimeout}, h.log, h.ps.Client, reg); err != nil {
		t.Fatal(err)
	}
	deps := Deps{Appender: h.appender, Publisher: pub, Registerer: reg, Logger: logger}
	if o.pull {
		if deps.Subscriber, err = ps.Subscriber(ingestSub, logger); err != nil {
			t.Fatal(err)
		}
	}
	cfg := o.cfg
	cfg.AuditTopic, cfg.DeadLetterTopic = auditTopic, deadTopic
	if h.pipe, err = New(cfg, deps); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.done <- h.pipe.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-h.done; err != nil {
			t.Errorf("pipeline Run: %v", err)
		}
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := errors.Join(h.pipe.Close(stop), h.appender.Close(stop), pub.Close()); err != nil {
			t.Errorf("closing the pipeline: %v", err)
		}
	})
	select {
	case <-h.pipe.Running():
	case err := <-h.done:
		t.Fatalf("pipeline stopped at start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("pipeline did not start within 30s")
	}
}

// publish publishes every payload to the audit topic, as a log sink would.
func (h *harness) publish(payloads [][]byte) {
	h.t.Helper()
	p := h.ps.Client.Publisher(auditTopic)
	defer p.Stop()
	results := make([]*pubsub.PublishResult, len(payloads))
	for i, d := range payloads {
		results[i] = p.Publish(h.t.Context(), &pubsub.Message{Data: d, Attributes: map[string]string{"logging.googleapis.com/timestamp": strconv.Itoa(i)}})
	}
	for _, r := range results {
		if _, err := r.Get(h.t.Context()); err != nil {
			h.t.Fatalf("publishing: %v", err)
		}
	}
}

// settled counts the deliveries that reached a final outcome (appended,
// skipped or dead-lettered), through either intake.
func (h *harness) settled() int {
	m := h.pipe.metrics
	n := 0.0
	for _, intake := range []string{intakePull, intakePush} {
		n += testutil.ToFloat64(m.received.WithLabelValues(intake)) - testutil.ToFloat64(m.redelivered.WithLabelValues(intake))
	}
	return int(n)
}

// outcomes sums the pipeline's counters of settled deliveries over their
// labels: appended, skipped and dead-lettered entries.
func (h *harness) outcomes() map[string]int {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	names := map[string]string{"bqobserver_ingest_appended_total": "appended",
		"bqobserver_ingest_skipped_total": "skipped", "bqobserver_ingest_dead_lettered_total": "dead_lettered"}
	got := map[string]int{}
	for _, mf := range mfs {
		if name, ok := names[mf.GetName()]; ok {
			for _, m := range mf.GetMetric() {
				got[name] += int(m.GetCounter().GetValue())
			}
		}
	}
	return got
}

// logged reads every event in the log.
func (h *harness) logged() []events.Event {
	h.t.Helper()
	var evs []events.Event
	err := h.log.Range(context.Background(), time.Unix(0, 0), time.Now().AddDate(10, 0, 0), func(e events.Event) error {
		evs = append(evs, e)
		return nil
	})
	if err != nil {
		h.t.Fatalf("reading the log: %v", err)
	}
	return evs
}

// drain receives from a subscription, acknowledging everything, until
// done holds for what it received and then nothing more arrives for quiet
// (or a minute passes), and returns the messages.
func (h *harness) drain(sub string, quiet time.Duration, done func([]*pubsub.Message) bool) []*pubsub.Message {
	h.t.Helper()
	var mu sync.Mutex
	var got []*pubsub.Message
	last := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		for range time.Tick(quiet / 4) {
			mu.Lock()
			finished := done(got) && time.Since(last) > quiet
			mu.Unlock()
			if finished || ctx.Err() != nil {
				cancel()
				return
			}
		}
	}()
	s := h.ps.Client.Subscriber(sub)
	s.ReceiveSettings.NumGoroutines = 16 // the in-process Pub/Sub paces each stream
	err := s.Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		mu.Lock()
		got, last = append(got, m), time.Now()
		mu.Unlock()
		m.Ack()
	})
	if err != nil && ctx.Err() == nil {
		h.t.Fatalf("receiving from %s: %v", sub, err)
	}
	return got
}

// atLeast is a drain condition: n distinct payloads received.
func atLeast(n int) func([]*pubsub.Message) bool {
	return func(ms []*pubsub.Message) bool {
		seen := map[string]bool{}
		for _, m := range ms {
			seen[string(m.Data)] = true
		}
		return len(seen) >= n
	}
}

// atLeastEvents is done once the messages of the events topic carry n
// distinct events.
func atLeastEvents(n int) func([]*pubsub.Message) bool {
	return func(ms []*pubsub.Message) bool {
		seen := map[string]bool{}
		for _, m := range ms {
			evs, _ := events.UnmarshalMessages(m.Data) // a bad message fails the caller
			for _, e := range evs {
				seen[e.ID] = true
			}
		}
		return len(seen) >= n
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
