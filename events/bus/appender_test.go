package bus

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bqobserver/bqobserver/events"
)

func newAppender(t *testing.T, f *fixture, l Log, cfg AppenderConfig) *Appender {
	t.Helper()
	if cfg.Topic == "" {
		cfg.Topic = eventsTopic
	}
	a, err := NewAppender(cfg, l, f.ps.Client, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	return a
}

// published decodes what the events subscription received (n events, in
// any number of messages), by event id, with how many times each came. It
// checks each message's attributes: a message of one event carries the
// event's, one of several how many.
func published(t *testing.T, f *fixture, sub string, n int) (map[string]events.Event, map[string]int) {
	t.Helper()
	decode := func(m *pubsub.Message) []events.Event {
		evs, err := events.UnmarshalMessages(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	msgs := f.receiveUntil(sub, func(got []*pubsub.Message) bool {
		k := 0
		for _, m := range got {
			k += len(decode(m))
		}
		return k >= n
	})
	evs, times := map[string]events.Event{}, map[string]int{}
	for _, m := range msgs {
		batch := decode(m)
		want := map[string]string{events.AttrEvents: strconv.Itoa(len(batch))}
		if len(batch) == 1 {
			want = events.MessageAttributes(&batch[0])
		}
		if diff := cmp.Diff(want, m.Attributes); diff != "" {
			t.Errorf("attributes of a message of %d events (-want +got):\n%s", len(batch), diff)
		}
		for _, e := range batch {
			evs[e.ID] = e
			times[e.ID]++
		}
	}
	return evs, times
}

// TestAppenderAppendsThenPublishes appends from many writers at once:
// every event is in the log and published once, with its attributes, and
// the metrics count them.
func TestAppenderAppendsThenPublishes(t *testing.T) {
	f := newFixture(t)
	f.subscription("check", eventsTopic)
	l := newLog(t)
	a := newAppender(t, f, l, AppenderConfig{Batch: 7})
	evs := jobEvents("many", 120)
	var wg sync.WaitGroup
	for i := 0; i < len(evs); i += 3 {
		wg.Go(func() {
			if err := a.Append(t.Context(), evs[i:i+3]); err != nil {
				t.Errorf("Append: %v", err)
			}
		})
	}
	wg.Wait()
	if diff := cmp.Diff(evs, logged(t, l)); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	got, times := published(t, f, "check", len(evs))
	want, once := map[string]events.Event{}, map[string]int{}
	for _, e := range evs {
		want[e.ID], once[e.ID] = e, 1
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("published events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(once, times); diff != "" {
		t.Errorf("times each event was published (-want +got):\n%s", diff)
	}
	for name, c := range map[string]prometheus.Collector{"appended": a.metrics.appended, "published": a.metrics.published} {
		if got := int(testutil.ToFloat64(c)); got != len(evs) {
			t.Errorf("%s events metric = %d, want %d", name, got, len(evs))
		}
	}
	if n := testutil.CollectAndCount(a.metrics.batchSize); n != 1 {
		t.Errorf("batch size histogram has %d series, want 1", n)
	}
}

// TestAppenderDuplicate appends the same events twice, as a redelivery
// does: the log holds them once, and they are published twice.
func TestAppenderDuplicate(t *testing.T) {
	f := newFixture(t)
	f.subscription("check", eventsTopic)
	l := newLog(t)
	a := newAppender(t, f, l, AppenderConfig{})
	evs := jobEvents("dup", 4)
	for range 2 {
		if err := a.Append(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(evs, logged(t, l)); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	_, times := published(t, f, "check", 2*len(evs))
	want := map[string]int{}
	for _, e := range evs {
		want[e.ID] = 2
	}
	if diff := cmp.Diff(want, times); diff != "" {
		t.Errorf("times each event was published (-want +got):\n%s", diff)
	}
}

// TestAppenderFailures checks what Append answers when it cannot do both
// steps, and what it leaves behind.
func TestAppenderFailures(t *testing.T) {
	invalid := jobEvents("invalid", 2)
	invalid[1].ID = ""
	tests := []struct {
		name       string
		topic      string
		closed     bool
		evs        []events.Event
		wantErr    error
		wantLogged []events.Event
	}{
		{"an invalid event: nothing is written", "", false, invalid, events.ErrInvalid, nil},
		{"closed: nothing is written", "", true, jobEvents("closed", 2), events.ErrUnavailable, nil},
		{"the topic is missing: written, not acknowledged", "no-such-topic", false, jobEvents("unpublished", 2), events.ErrUnavailable,
			jobEvents("unpublished", 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			l := newLog(t)
			a := newAppender(t, f, l, AppenderConfig{Topic: tt.topic})
			if tt.closed {
				if err := a.Close(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			err := a.Append(t.Context(), tt.evs)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Append = %v, want an error matching %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantLogged, logged(t, l)); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAppenderCloseDrains closes the appender while writers append: every
// append that was accepted is in the log and published, every other one
// failed transiently.
func TestAppenderCloseDrains(t *testing.T) {
	f := newFixture(t)
	f.subscription("check", eventsTopic)
	l := newLog(t)
	a := newAppender(t, f, l, AppenderConfig{Batch: 5, Workers: 2})
	evs := jobEvents("drain", 200)
	var mu sync.Mutex
	var acked []events.Event
	var wg sync.WaitGroup
	for i := 0; i < len(evs); i += 2 {
		wg.Go(func() {
			err := a.Append(context.Background(), evs[i:i+2])
			switch {
			case err == nil:
				mu.Lock()
				acked = append(acked, evs[i:i+2]...)
				mu.Unlock()
			case !errors.Is(err, events.ErrUnavailable):
				t.Errorf("Append during Close = %v, want nil or a transient error", err)
			}
		})
		if i == len(evs)/2 {
			wg.Go(func() {
				if err := a.Close(t.Context()); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
	}
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no append was accepted before Close")
	}
	inLog := map[string]bool{}
	for _, e := range logged(t, l) {
		inLog[e.ID] = true
	}
	got, _ := published(t, f, "check", len(acked))
	for _, e := range acked {
		if _, ok := got[e.ID]; !ok || !inLog[e.ID] {
			t.Errorf("event %s was acknowledged but is not both in the log (%v) and published (%v)", e.ID, inLog[e.ID], ok)
		}
	}
}

// TestAppenderCloseIsBounded closes the appender while its log writes hang:
// Close gives up when its context ends, and the append in flight fails
// transiently right after, long before the write's own timeout.
func TestAppenderCloseIsBounded(t *testing.T) {
	f := newFixture(t)
	h := &hang{}
	l := newLog(t, h.dialOption())
	a := newAppender(t, f, l, AppenderConfig{Timeout: time.Minute})
	h.on.Store(true)
	appended := make(chan error, 1)
	go func() { appended <- a.Append(context.Background(), jobEvents("hang", 1)) }()
	waitUntil(t, "a write to hang", func() bool { return h.calls.Load() > 0 })

	const bound = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	start := time.Now()
	err := a.Close(ctx)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want the deadline's error", err)
	}
	// The slack covers scheduling on a busy machine; the write's own
	// timeout is a minute.
	if slack := 2 * time.Second; took < bound || took > bound+slack {
		t.Errorf("Close took %v, want %v to %v", took, bound, bound+slack)
	}
	select {
	case err := <-appended:
		if !errors.Is(err, events.ErrUnavailable) {
			t.Errorf("the append in flight returned %v, want a transient error", err)
		}
	case <-time.After(time.Second):
		t.Error("the append in flight did not return after Close")
	}
	if n := testutil.CollectAndCount(a.metrics.appendTime); n != 1 {
		t.Errorf("append time histogram has %d series, want 1 (the failed write)", n)
	}
}
