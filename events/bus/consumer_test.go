package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bqobserver/bqobserver/events"
)

// projection records what a consumer feeds it, the way a projection would
// use it: some events make it fail.
type projection struct {
	mu       sync.Mutex
	handled  map[string]int
	panicOn  string
	prepares atomic.Int64
	ready    atomic.Bool
}

func (p *projection) handle(_ context.Context, e events.Event) error {
	if e.ID == p.panicOn {
		panic("cannot apply " + e.ID)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.handled[e.ID]++
	return nil
}

func (p *projection) seen() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := map[string]bool{}
	for id := range p.handled {
		seen[id] = true
	}
	return seen
}

type consumerOpts struct {
	mode    Mode
	sub     string
	prepare func(ctx context.Context) error
	logger  *logBuffer
	reg     prometheus.Registerer
	// handle, if set, replaces the projection's handler.
	handle func(ctx context.Context, e events.Event) error
	// The consumer's bounds; 0 for the defaults.
	handleTimeout, prepareTimeout time.Duration
}

// startConsumer runs a consumer of the events topic for p until the test
// ends; stop stops it (Close included) and returns what Run returned.
func startConsumer(t *testing.T, f *fixture, p *projection, o consumerOpts) (c *Consumer, stop func() error) {
	t.Helper()
	if o.logger == nil {
		o.logger = &logBuffer{}
	}
	handle := p.handle
	if o.handle != nil {
		handle = o.handle
	}
	c, err := NewConsumer(
		ConsumerConfig{Name: "test-feed", Topic: eventsTopic, Mode: o.mode, Subscription: o.sub, DeadLetterTopic: deadTopic, Retry: quickRetry,
			HandleTimeout: o.handleTimeout, PrepareTimeout: o.prepareTimeout},
		ConsumerDeps{PubSub: f.bus(), Publisher: f.publisher(), Logger: o.logger.logger(), Handle: handle,
			Prepare: o.prepare, Ready: func() { p.ready.Store(true) }, Registerer: o.reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			closeCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
			defer done()
			runErr = errors.Join(<-ran, c.Close(closeCtx))
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return c, stop
}

// TestConsumerPerReplica feeds a projection from a subscription of the
// replica's own: the subscription exists while the consumer runs and is
// deleted when it stops; the projection becomes ready after a prepare step
// that failed transiently first; every event is handled, and a payload that
// is not an event and an event whose handler panics are dead-lettered with
// their reasons.
func TestConsumerPerReplica(t *testing.T) {
	f := newFixture(t)
	evs := jobEvents("feed", 20)
	p := &projection{handled: map[string]int{}, panicOn: evs[7].ID}
	prepare := func(ctx context.Context) error {
		if p.prepares.Add(1) < 3 {
			return fmt.Errorf("reading the log: %w", events.ErrUnavailable)
		}
		return nil
	}
	c, stop := startConsumer(t, f, p, consumerOpts{mode: PerReplica, sub: "running", prepare: prepare})
	waitUntil(t, "the projection to be ready", p.ready.Load)
	if !strings.HasPrefix(c.Subscription(), "running-") || !f.subscriptionExists(c.Subscription()) {
		t.Fatalf("replica subscription %q does not exist or lacks the prefix", c.Subscription())
	}
	if got := p.prepares.Load(); got != 3 {
		t.Errorf("prepare ran %d times, want 3 (two transient failures)", got)
	}
	garbage := []byte(`{"not":"an event"}`)
	payloads := [][]byte{garbage}
	for _, e := range evs {
		payloads = append(payloads, payload(t, e))
	}
	f.publish(eventsTopic, payloads...)
	want := map[string]bool{}
	for _, e := range evs {
		if e.ID != p.panicOn {
			want[e.ID] = true
		}
	}
	waitUntil(t, "every event to be handled", func() bool { return len(p.seen()) == len(want) })
	if diff := cmp.Diff(want, p.seen()); diff != "" {
		t.Errorf("handled events (-want +got):\n%s", diff)
	}
	wantDead := map[string]string{string(garbage): ReasonNotAnEvent, string(payload(t, evs[7])): ReasonPanic}
	if diff := cmp.Diff(wantDead, f.deadLetters(len(wantDead))); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	if err := stop(); err != nil {
		t.Errorf("stopping: %v", err)
	}
	if f.subscriptionExists(c.Subscription()) {
		t.Errorf("replica subscription %s outlived a clean stop", c.Subscription())
	}
}

// TestConsumerShared consumes a consumer group's subscription, which setup
// made: it is left in place at stop.
func TestConsumerShared(t *testing.T) {
	f := newFixture(t)
	f.subscription("history", eventsTopic)
	p := &projection{handled: map[string]int{}}
	reg := prometheus.NewRegistry()
	c, stop := startConsumer(t, f, p, consumerOpts{mode: Shared, sub: "history", reg: reg})
	waitUntil(t, "the consumer to be ready", p.ready.Load)
	evs := jobEvents("shared", 5)
	for _, e := range evs {
		f.publish(eventsTopic, payload(t, e))
	}
	waitUntil(t, "every event to be handled", func() bool { return len(p.seen()) == len(evs) })
	// Every delivery is followed from its publish time to its settlement.
	waitUntil(t, "every delivery to settle", func() bool { return lagCount(t, reg) >= uint64(len(evs)) })
	if err := stop(); err != nil {
		t.Errorf("stopping: %v", err)
	}
	if c.Subscription() != "history" || !f.subscriptionExists("history") {
		t.Errorf("the shared subscription %q was not used or did not survive the stop", c.Subscription())
	}
}

// TestConsumerPrepareBesideSubscribing: the prepare step runs as soon as the
// replica's subscription exists, without waiting for the router to
// subscribe, and what is published while it runs (the events appended
// during a rebuild) still reaches the handler; the consumer becomes ready
// only after both.
func TestConsumerPrepareBesideSubscribing(t *testing.T) {
	f := newFixture(t)
	p := &projection{handled: map[string]int{}}
	evs := jobEvents("during", 10)
	var readyEarly atomic.Bool
	prepare := func(ctx context.Context) error {
		for _, e := range evs {
			f.publish(eventsTopic, payload(t, e))
		}
		readyEarly.Store(p.ready.Load())
		return nil
	}
	_, stop := startConsumer(t, f, p, consumerOpts{mode: PerReplica, sub: "running", prepare: prepare})
	waitUntil(t, "the projection to be ready", p.ready.Load)
	if readyEarly.Load() {
		t.Error("the consumer was ready before its prepare step returned")
	}
	waitUntil(t, "every event published during the prepare step to be handled", func() bool { return len(p.seen()) == len(evs) })
	if err := stop(); err != nil {
		t.Errorf("stopping: %v", err)
	}
}

// TestConsumerPrepareEnds stops or fails the prepare step: the consumer
// never becomes ready and never says it is live.
func TestConsumerPrepareEnds(t *testing.T) {
	permanent := errors.New("the log's schema is wrong")
	tests := []struct {
		name    string
		prepare func(ctx context.Context) error
		wantErr error
	}{
		{"cancelled while retrying", func(ctx context.Context) error {
			return fmt.Errorf("reading the log: %w", events.ErrUnavailable)
		}, nil},
		{"cancelled while running", func(ctx context.Context) error {
			<-ctx.Done()
			return fmt.Errorf("reading the log: %w: %w", events.ErrUnavailable, ctx.Err())
		}, nil},
		{"a permanent failure", func(context.Context) error { return permanent }, permanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			p := &projection{handled: map[string]int{}}
			logs := &logBuffer{}
			started := make(chan struct{})
			var once sync.Once
			prepare := func(ctx context.Context) error {
				once.Do(func() { close(started) })
				return tt.prepare(ctx)
			}
			_, stop := startConsumer(t, f, p, consumerOpts{mode: PerReplica, sub: "running", prepare: prepare, logger: logs})
			<-started
			if tt.wantErr == nil {
				time.Sleep(100 * time.Millisecond) // let it retry or block
			}
			if err := stop(); !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("Run and Close = %v, want %v", err, tt.wantErr)
			}
			if p.ready.Load() || strings.Contains(logs.String(), "projection live") {
				t.Errorf("the consumer became ready; logs:\n%s", logs.String())
			}
		})
	}
}

// TestConsumerHandleTimeout: a handler whose dependency does not answer
// (it waits for its context) is cut short after HandleTimeout, and the
// event is handled by a later attempt, instead of holding the message for
// ever.
func TestConsumerHandleTimeout(t *testing.T) {
	f := newFixture(t)
	f.subscription("history", eventsTopic)
	p := &projection{handled: map[string]int{}}
	var hung atomic.Int64
	hang := func(ctx context.Context, e events.Event) error {
		if hung.Add(1) <= 2 {
			<-ctx.Done()
			return fmt.Errorf("reading the log: %w: %w", events.ErrUnavailable, ctx.Err())
		}
		return p.handle(ctx, e)
	}
	_, stop := startConsumer(t, f, p, consumerOpts{mode: Shared, sub: "history", handle: hang, handleTimeout: 100 * time.Millisecond})
	waitUntil(t, "the consumer to be ready", p.ready.Load)
	evs := jobEvents("stuck", 1)
	f.publish(eventsTopic, payload(t, evs[0]))
	waitUntil(t, "the event to be handled after two attempts that did not answer", func() bool { return p.seen()[evs[0].ID] })
	if err := stop(); err != nil {
		t.Errorf("stopping: %v", err)
	}
}

// TestConsumerPrepareTimeout: a prepare step whose log does not answer is
// cut short after PrepareTimeout, with a warning, and tried again, even
// though it returns its context's error as it is (as a rebuild does); the
// consumer becomes ready once an attempt succeeds.
func TestConsumerPrepareTimeout(t *testing.T) {
	f := newFixture(t)
	p := &projection{handled: map[string]int{}}
	logs := &logBuffer{}
	var attempts atomic.Int64
	prepare := func(ctx context.Context) error {
		if attempts.Add(1) == 1 {
			<-ctx.Done()
			return fmt.Errorf("rebuilding the running jobs: %w", ctx.Err())
		}
		return nil
	}
	_, stop := startConsumer(t, f, p, consumerOpts{mode: PerReplica, sub: "running", prepare: prepare, logger: logs, prepareTimeout: 100 * time.Millisecond})
	waitUntil(t, "the consumer to be ready after a prepare step that did not answer", p.ready.Load)
	if !strings.Contains(logs.String(), "preparing the projection failed; trying again") || !strings.Contains(logs.String(), "not done within 100ms") {
		t.Errorf("no warning of the prepare step cut short; logs:\n%s", logs.String())
	}
	if err := stop(); err != nil {
		t.Errorf("stopping: %v", err)
	}
}

// TestConsumerStoppedBeforeStart stops a consumer before its replica
// subscription exists: a stop is not a failure, and nothing is left behind.
func TestConsumerStoppedBeforeStart(t *testing.T) {
	f := newFixture(t)
	p := &projection{handled: map[string]int{}}
	c, err := NewConsumer(
		ConsumerConfig{Name: "test-feed", Topic: eventsTopic, Mode: PerReplica, Subscription: "running", DeadLetterTopic: deadTopic, Retry: quickRetry},
		ConsumerDeps{PubSub: f.bus(), Publisher: f.publisher(), Logger: (&logBuffer{}).logger(), Handle: p.handle})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Run(ctx); err != nil {
		t.Errorf("Run stopped before it started = %v, want nil", err)
	}
	if err := c.Close(t.Context()); err != nil {
		t.Errorf("Close = %v, want nil", err)
	}
	if _, err := f.bus().Client.SubscriptionAdminClient.GetSubscription(t.Context(),
		&pubsubpb.GetSubscriptionRequest{Subscription: "projects/" + f.bus().Client.Project() + "/subscriptions/" + c.Subscription()}); status.Code(err) != codes.NotFound {
		t.Errorf("the replica subscription after the stop: %v, want NotFound", err)
	}
}

func TestConsumerConfigValidate(t *testing.T) {
	err := ConsumerConfig{Mode: Mode(7)}.Validate()
	for _, want := range []string{"name", "topic", "subscription", "mode"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %q", err, want)
		}
	}
	names := []string{replicaName("p"), replicaName("p")}
	if names[0] == names[1] || slices.ContainsFunc(names, func(n string) bool { return !strings.HasPrefix(n, "p-") }) {
		t.Errorf("replica names %q are not distinct names with the prefix", names)
	}
}
