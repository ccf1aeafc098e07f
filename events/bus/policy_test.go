package bus

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
)

var quickRetry = RetryConfig{MaxRetries: 3, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond}

// TestPolicy runs a handler that fails in every way under the policy:
// what the chain returns (nil acknowledges, an error hands back), how often
// the handler ran, and what reached the dead-letter topic with which reason.
func TestPolicy(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name        string
		fail        func(attempt int) error // nil: succeed
		panics      bool
		deadTopic   string
		wantErr     bool
		wantReason  string
		wantAttempt int
	}{
		{name: "success", fail: func(int) error { return nil }, wantAttempt: 1},
		{name: "invalid event", fail: func(int) error { return fmt.Errorf("checking: %w", events.ErrInvalid) },
			wantReason: ReasonInvalidEvent, wantAttempt: 1},
		{name: "typed permanent error", fail: func(int) error { return Permanent("bad_json", errors.New("not JSON")) },
			wantReason: "bad_json", wantAttempt: 1},
		{name: "panic", panics: true, wantReason: ReasonPanic, wantAttempt: 1},
		{name: "transient, always", fail: func(int) error { return fmt.Errorf("reading: %w", events.ErrUnavailable) },
			wantErr: true, wantAttempt: quickRetry.MaxRetries + 1},
		{name: "transient, then success", fail: func(n int) error {
			if n < 3 {
				return errors.New("deadline")
			}
			return nil
		}, wantAttempt: 3},
		{name: "permanent, but the dead-letter topic is missing", deadTopic: "no-such-topic",
			fail: func(int) error { return events.ErrInvalid }, wantErr: true, wantAttempt: 1},
	}
	wantDead := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attempts := 0
			h := func(*message.Message) ([]*message.Message, error) {
				attempts++
				if tt.panics {
					panic("boom")
				}
				return nil, tt.fail(attempts)
			}
			p := Policy{Name: "test", DeadLetterTopic: deadTopic, Publisher: f.publisher(), Retry: quickRetry, Logger: discard()}
			if tt.deadTopic != "" {
				p.DeadLetterTopic = tt.deadTopic
			}
			wrapped, err := p.Wrap(h)
			if err != nil {
				t.Fatal(err)
			}
			msg := message.NewMessage(tt.name, []byte("payload of "+tt.name))
			msg.Metadata.Set("original", "kept")
			_, err = wrapped(msg)
			if (err != nil) != tt.wantErr {
				t.Errorf("chain returned %v, want an error: %v", err, tt.wantErr)
			}
			if err == nil && DeadLetterReason(msg) != tt.wantReason {
				t.Errorf("DeadLetterReason = %q, want %q", DeadLetterReason(msg), tt.wantReason)
			}
			if attempts != tt.wantAttempt {
				t.Errorf("handler ran %d times, want %d", attempts, tt.wantAttempt)
			}
			if tt.wantReason != "" && !tt.wantErr {
				wantDead[string(msg.Payload)] = tt.wantReason
			}
		})
	}
	dead := f.receive(deadSub, len(wantDead))
	got := map[string]string{}
	for _, m := range dead {
		got[string(m.Data)] = m.Attributes[MetaReason]
		if m.Attributes["original"] != "kept" || m.Attributes[middleware.ReasonForPoisonedKey] == "" {
			t.Errorf("dead letter %q lacks its original attributes or the error: %v", m.Data, m.Attributes)
		}
		// Pub/Sub refuses a publish with a longer attribute (the fake does
		// not): a panic's stack would keep its message from being
		// dead-lettered, and redelivered for ever.
		for k, v := range m.Attributes {
			if len(v) > events.MaxAttributeValue {
				t.Errorf("dead letter %q has a %d-byte attribute %s, more than Pub/Sub takes", m.Data, len(v), k)
			}
		}
	}
	if diff := cmp.Diff(wantDead, got); diff != "" {
		t.Errorf("dead letters by payload (-want +got):\n%s", diff)
	}
}

func TestPolicyValidate(t *testing.T) {
	err := Policy{Retry: RetryConfig{Jitter: 2, MaxRetries: -1}}.Validate()
	for _, want := range []string{"handler name", "dead-letter topic", "publisher", "logger", "jitter", "negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %q", err, want)
		}
	}
}
