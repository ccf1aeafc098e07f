package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
)

// TestAppenderPublishesBatches appends from many writers at once, so that
// log writes carry several appends: each write is published in messages of
// at most MessageEvents events, every event once; with MessageEvents 1,
// every message is in the one-event form.
func TestAppenderPublishesBatches(t *testing.T) {
	for _, perMsg := range []int{7, 1} {
		t.Run(fmt.Sprintf("events per message %d", perMsg), func(t *testing.T) {
			f := newFixture(t)
			f.subscription("check", eventsTopic)
			a := newAppender(t, f, newLog(t), AppenderConfig{Batch: 50, Workers: 1, MessageEvents: perMsg})
			evs := jobEvents("batched", 300)
			var wg sync.WaitGroup
			for i := 0; i < len(evs); i += 2 {
				wg.Go(func() {
					if err := a.Append(t.Context(), evs[i:i+2]); err != nil {
						t.Errorf("Append: %v", err)
					}
				})
			}
			wg.Wait()
			var sizes []int
			msgs := f.receiveUntil("check", func(got []*pubsub.Message) bool {
				sizes = sizes[:0]
				n := 0
				for _, m := range got {
					batch, err := events.UnmarshalMessages(m.Data)
					if err != nil {
						t.Fatal(err)
					}
					sizes = append(sizes, len(batch))
					n += len(batch)
				}
				return n >= len(evs)
			})
			got, times := map[string]int{}, 0
			for _, m := range msgs {
				batch, _ := events.UnmarshalMessages(m.Data)
				for _, e := range batch {
					got[e.ID]++
					times++
				}
			}
			want := map[string]int{}
			for _, e := range evs {
				want[e.ID] = 1
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("times each event was published (-want +got):\n%s", diff)
			}
			most := 0
			for _, n := range sizes {
				most = max(most, n)
			}
			switch {
			case most > perMsg:
				t.Errorf("a message carries %d events, more than %d", most, perMsg)
			case perMsg > 1 && most < 2:
				t.Errorf("%d messages for %d events, none with several: the writes were not published together", len(msgs), times)
			}
		})
	}
}

// TestUnmarshalMessagesForms reads both forms a message may take.
func TestUnmarshalMessagesForms(t *testing.T) {
	evs := jobEvents("forms", 3)
	var payloads [][]byte
	for _, e := range evs {
		payloads = append(payloads, payload(t, e))
	}
	for name, tc := range map[string]struct {
		payload []byte
		want    []events.Event
	}{
		"one event":           {payloads[0], evs[:1]},
		"an array of one":     {events.JoinMessages(payloads[:1]), evs[:1]},
		"an array of three":   {events.JoinMessages(payloads), evs},
		"space before":        {append([]byte(" \n"), events.JoinMessages(payloads)...), evs},
		"empty array":         {[]byte(`[]`), nil},
		"an invalid member":   {events.JoinMessages([][]byte{payloads[0], []byte(`{"id":"x"}`)}), nil},
		"not an array of any": {[]byte(`[1,2]`), nil},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := events.UnmarshalMessages(tc.payload)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("decoded %d events from %s", len(got), tc.payload)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSplitMessages reads the valid members of an array beside the ones
// that are not events, which it returns as the message carried them.
func TestSplitMessages(t *testing.T) {
	evs := jobEvents("split", 2)
	a, b := payload(t, evs[0]), payload(t, evs[1])
	for name, payload := range map[string][]byte{
		"as the service writes it": events.JoinMessages([][]byte{a, []byte(`{"id":"x"}`), b}),
		"spaced":                   []byte("[ " + string(a) + " ,\n" + `{"id":"x"}` + ",\t" + string(b) + " ]"),
	} {
		t.Run(name, func(t *testing.T) {
			got, bad, err := events.SplitMessages(payload)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(evs, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if len(bad) != 1 || string(bad[0].Raw) != `{"id":"x"}` || !errors.Is(bad[0].Err, events.ErrInvalid) {
				t.Errorf("unreadable members %+v, want the one with id x, invalid", bad)
			}
		})
	}
}

// failingProjection fails some events: for good (invalid), or once.
type failingProjection struct {
	*projection
	invalid string
	once    string
	failed  bool
}

func (p *failingProjection) handle(ctx context.Context, e events.Event) error {
	p.mu.Lock()
	switch {
	case e.ID == p.invalid:
		p.mu.Unlock()
		return fmt.Errorf("applying: %w", events.ErrInvalid)
	case e.ID == p.once && !p.failed:
		p.failed = true
		p.mu.Unlock()
		return fmt.Errorf("applying: %w", events.ErrUnavailable)
	}
	p.mu.Unlock()
	return p.projection.handle(ctx, e)
}

// TestConsumerBatches feeds messages of several events: every event of a
// message is handled; one that fails transiently hands the whole message
// back, whose events are then handled again; one that fails for good, or
// panics, is dead-lettered alone with its reason, the other events of its
// message applied; a member of an array that is not an event is
// dead-lettered alone as not an event, the events beside it applied; a
// message that is not an array of events is dead-lettered whole.
func TestConsumerBatches(t *testing.T) {
	f := newFixture(t)
	f.subscription("history", eventsTopic)
	evs := jobEvents("batches", 8)
	p := &failingProjection{projection: &projection{handled: map[string]int{}, panicOn: evs[6].ID}, once: evs[1].ID, invalid: evs[4].ID}
	c, err := NewConsumer(
		ConsumerConfig{Name: "test-feed", Topic: eventsTopic, Mode: Shared, Subscription: "history", DeadLetterTopic: deadTopic, Retry: quickRetry},
		ConsumerDeps{PubSub: f.bus(), Publisher: f.publisher(), Logger: discard(), Handle: p.handle})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-ran
		c.Close(context.Background())
	})
	var payloads [][]byte
	for _, e := range evs {
		payloads = append(payloads, payload(t, e))
	}
	retried := events.JoinMessages(payloads[:3])
	poisoned := events.JoinMessages(payloads[3:6])
	panicked := events.JoinMessages(payloads[6:])
	badMembers := events.JoinMessages([][]byte{[]byte(`{"id":"x"}`), payloads[7], []byte(`17`)})
	badAndPoisoned := events.JoinMessages([][]byte{[]byte(`{"id":"y"}`), payloads[4], payloads[5]})
	allBad := events.JoinMessages([][]byte{[]byte(`{"id":"z"}`), []byte(`null`)})
	f.publish(eventsTopic, retried, poisoned, panicked, []byte(`[]`), []byte(`[1,`), badMembers, badAndPoisoned, allBad)

	want := map[string]bool{evs[0].ID: true, evs[1].ID: true, evs[2].ID: true, evs[3].ID: true, evs[5].ID: true, evs[7].ID: true}
	waitUntil(t, "every event but the invalid and the panicking ones to be handled", func() bool { return len(p.seen()) == len(want) })
	if diff := cmp.Diff(want, p.seen()); diff != "" {
		t.Errorf("handled events (-want +got):\n%s", diff)
	}
	// Only the events that failed for good are dead-lettered.
	wantDead := map[string]string{string(payloads[4]): ReasonInvalidEvent, string(payloads[6]): ReasonPanic,
		`[]`: ReasonNotAnEvent, `[1,`: ReasonNotAnEvent, `[{"id":"x"},17]`: ReasonNotAnEvent,
		string(events.JoinMessages([][]byte{[]byte(`{"id":"y"}`), payloads[4]})): ReasonNotAnEvent,
		string(allBad): ReasonNotAnEvent}
	if diff := cmp.Diff(wantDead, f.deadLetters(len(wantDead))); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	// A dead letter of members that are not events and of an event that
	// failed for good names both failures.
	mixed := f.deadErrors[string(events.JoinMessages([][]byte{[]byte(`{"id":"y"}`), payloads[4]}))]
	if !strings.Contains(mixed, "not a valid event") && !strings.Contains(mixed, "invalid event") || !strings.Contains(mixed, evs[4].ID) {
		t.Errorf("the dead letter of an unreadable member and an invalid event says %q, want both failures named", mixed)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.handled[evs[0].ID] < 2 || p.handled[evs[2].ID] < 2 {
		t.Errorf("the events beside the one that failed once were handled %d and %d times, want again with it",
			p.handled[evs[0].ID], p.handled[evs[2].ID])
	}
}

// TestConsumerHandlesAMessageEventsTogether hands a consumer a message of
// more events than its EventWorkers, whose handler waits until EventWorkers
// of them are in its hands at once (as the history sink's rows wait for
// the append that carries them): every event is handled once, and never
// more than EventWorkers at a time.
func TestConsumerHandlesAMessageEventsTogether(t *testing.T) {
	for _, workers := range []int{1, 4, DefaultEventWorkers} {
		t.Run(fmt.Sprintf("workers %d", workers), func(t *testing.T) { testEventWorkers(t, workers) })
	}
}

func testEventWorkers(t *testing.T, workers int) {
	f := newFixture(t)
	f.subscription("together", eventsTopic)
	evs := jobEvents("together", 2*workers+3)
	var (
		mu        sync.Mutex
		handled   = map[string]int{}
		inflight  int
		most      int
		started   int
		together  = make(chan struct{})
		waitedOut bool
	)
	wait, cancel := context.WithTimeout(t.Context(), 10*time.Second) // for them all
	defer cancel()
	handle := func(ctx context.Context, e events.Event) error {
		mu.Lock()
		handled[e.ID]++
		inflight++
		most = max(most, inflight)
		if started++; started == workers {
			close(together)
		}
		mu.Unlock()
		select {
		case <-together:
		case <-wait.Done():
			mu.Lock()
			waitedOut = true
			mu.Unlock()
		}
		time.Sleep(2 * time.Millisecond) // in hand long enough for more workers to show
		mu.Lock()
		inflight--
		mu.Unlock()
		return nil
	}
	cfg := ConsumerConfig{Name: "test-together", Topic: eventsTopic, Mode: Shared, Subscription: "together", DeadLetterTopic: deadTopic}
	if workers != DefaultEventWorkers {
		cfg.EventWorkers = workers
	}
	c, err := NewConsumer(cfg, ConsumerDeps{PubSub: f.bus(), Publisher: f.publisher(), Logger: discard(), Handle: handle})
	if err != nil {
		t.Fatal(err)
	}
	var payloads [][]byte
	for _, e := range evs {
		payloads = append(payloads, payload(t, e))
	}
	msg := message.NewMessage("together", events.JoinMessages(payloads))
	msg.SetContext(t.Context())
	if _, err := c.handle(msg); err != nil {
		t.Fatalf("handle: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if waitedOut {
		t.Errorf("fewer than %d events were handled at once", workers)
	}
	if most > workers {
		t.Errorf("%d events were handled at once, more than %d", most, workers)
	}
	want := map[string]int{}
	for _, e := range evs {
		want[e.ID] = 1
	}
	if diff := cmp.Diff(want, handled); diff != "" {
		t.Errorf("times each event was handled (-want +got):\n%s", diff)
	}
}
