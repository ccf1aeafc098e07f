package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/bqobserver/bqobserver/events"
)

// MetaReason is the metadata a dead-lettered message carries beside its
// original payload and attributes and Watermill's reason_poisoned (the error
// text) and handler_poisoned: a stable identifier of why it can never be
// handled. It is the PermanentError's reason, "invalid_event" for an error
// matching events.ErrInvalid, or "panic".
const MetaReason = "bqobserver_reason"

// Reasons the policy gives on its own.
const (
	ReasonInvalidEvent = "invalid_event"
	ReasonPanic        = "panic"
)

// PermanentError is a failure that no retry can mend: the policy
// dead-letters the message with Reason.
type PermanentError struct {
	Reason string
	Err    error
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as permanent, with a stable reason.
func Permanent(reason string, err error) error {
	return &PermanentError{Reason: reason, Err: err}
}

// IsPermanent reports whether the policy dead-letters a message that failed
// with err: a PermanentError, an error matching events.ErrInvalid, or a
// panic. Everything else (a dependency unavailable, a deadline, shutdown) is
// transient.
func IsPermanent(err error) bool {
	return reason(err) != ""
}

// reason names a permanent error, or returns "" for a transient one.
func reason(err error) string {
	var perm *PermanentError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &perm):
		return perm.Reason
	case errors.As(err, new(middleware.RecoveredPanicError)):
		return ReasonPanic
	case errors.Is(err, events.ErrInvalid):
		return ReasonInvalidEvent
	}
	return ""
}

// RetryConfig is a bounded exponential backoff with jitter. The zero value
// of every field means its default.
type RetryConfig struct {
	MaxRetries      int           // default 5
	InitialInterval time.Duration // default 100ms
	MaxInterval     time.Duration // default 5s
	Multiplier      float64       // default 2
	Jitter          float64       // randomization factor, default 0.5
	// MaxElapsed bounds all retries of one message, default 20s: with one
	// append of up to the appender's write timeout after it, a message is
	// answered within the subscriptions' 60s acknowledgement deadline, also
	// on the push intake, whose request Pub/Sub abandons at that deadline.
	MaxElapsed time.Duration
}

func (r *RetryConfig) setDefaults() {
	if r.MaxRetries == 0 {
		r.MaxRetries = 5
	}
	setDuration(&r.InitialInterval, 100*time.Millisecond)
	setDuration(&r.MaxInterval, 5*time.Second)
	setDuration(&r.MaxElapsed, 20*time.Second)
	if r.Multiplier == 0 {
		r.Multiplier = 2
	}
	if r.Jitter == 0 {
		r.Jitter = 0.5
	}
}

// Validate reports every problem with r at once.
func (r RetryConfig) Validate() error {
	var errs []error
	if r.MaxRetries < 0 || r.InitialInterval < 0 || r.MaxInterval < 0 || r.MaxElapsed < 0 {
		errs = append(errs, errors.New("retry limits must not be negative"))
	}
	if r.Jitter < 0 || r.Jitter > 1 {
		errs = append(errs, fmt.Errorf("retry jitter %v is outside [0, 1]", r.Jitter))
	}
	if r.Multiplier != 0 && r.Multiplier < 1 {
		errs = append(errs, fmt.Errorf("retry multiplier %v is below 1", r.Multiplier))
	}
	return errors.Join(errs...)
}

func setDuration(v *time.Duration, d time.Duration) {
	if *v == 0 {
		*v = d
	}
}

// Policy is the one retry, poison and panic policy of every Watermill
// handler of the product (ingest and every consumer of the events topic). It
// wraps a handler in middleware, outermost first:
//
//  1. observe: logs, once per delivery however many attempts it took, a
//     message that was dead-lettered (with its reason) or handed back;
//  2. poison queue: a permanent failure is published to DeadLetterTopic with
//     its original payload and attributes, MetaReason and Watermill's
//     reason_poisoned, and the message is then acknowledged; if that publish
//     fails, the message is handed back instead;
//  3. classify: decides by error kind (IsPermanent) and sets MetaReason;
//  4. retry: a transient failure is retried in process with bounded
//     exponential backoff and jitter (RetryConfig), then handed back to
//     Pub/Sub (nack), which redelivers under the subscription's retry policy;
//     a permanent failure is never retried, and a transient one is never
//     dead-lettered by the policy (Pub/Sub's own dead-letter policy, after
//     many delivery attempts, is the guard against a message that crashes the
//     process);
//  5. recoverer: a panic becomes an error, which is permanent: the message
//     is dead-lettered with reason "panic" rather than retried forever.
type Policy struct {
	// Name is the handler's stable identifier, for logs.
	Name string
	// DeadLetterTopic receives the messages that fail permanently.
	DeadLetterTopic string
	// Publisher publishes to DeadLetterTopic.
	Publisher message.Publisher
	// Retry bounds the in-process retries of a transient failure.
	Retry RetryConfig
	// Logger receives the observe step's logs.
	Logger *slog.Logger
}

// Validate reports every problem with p at once.
func (p Policy) Validate() error {
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("no handler name"))
	}
	if p.DeadLetterTopic == "" {
		errs = append(errs, errors.New("dead-letter topic is not set"))
	}
	if p.Publisher == nil {
		errs = append(errs, errors.New("no dead-letter publisher"))
	}
	if p.Logger == nil {
		errs = append(errs, errors.New("no logger"))
	}
	return errors.Join(append(errs, p.Retry.Validate())...)
}

// Wrap returns h wrapped in the policy's middleware.
func (p Policy) Wrap(h message.HandlerFunc) (message.HandlerFunc, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("configuring the policy of %s: %w", p.Name, err)
	}
	p.Retry.setDefaults()
	poison, err := middleware.PoisonQueueWithFilter(p.Publisher, p.DeadLetterTopic, IsPermanent)
	if err != nil {
		return nil, fmt.Errorf("building the poison queue of %s: %w", p.Name, err)
	}
	r := p.Retry
	retry := middleware.Retry{
		MaxRetries:          r.MaxRetries,
		InitialInterval:     r.InitialInterval,
		MaxInterval:         r.MaxInterval,
		Multiplier:          r.Multiplier,
		RandomizationFactor: r.Jitter,
		MaxElapsedTime:      r.MaxElapsed,
		ShouldRetry:         func(rp middleware.RetryParams) bool { return !IsPermanent(rp.Err) },
	}
	return p.observe(poison(classify(retry.Middleware(middleware.Recoverer(h))))), nil
}

type verdictKey struct{}

// verdict is what the classify step found, for the observe step.
type verdict struct{ reason string }

// DeadLetterReason returns the reason with which the policy dead-lettered
// msg, or "" if it did not. Call it after the wrapped handler returned nil.
func DeadLetterReason(msg *message.Message) string {
	if v, ok := msg.Context().Value(verdictKey{}).(*verdict); ok {
		return v.reason
	}
	return ""
}

func (p Policy) observe(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		v := &verdict{}
		msg.SetContext(context.WithValue(msg.Context(), verdictKey{}, v))
		out, err := h(msg)
		switch {
		case err != nil:
			p.Logger.Warn("message handed back for redelivery", "handler", p.Name, "message_id", msg.UUID, "error", err.Error())
		case v.reason != "":
			p.Logger.Warn("message dead-lettered", "handler", p.Name, "message_id", msg.UUID, "reason", v.reason,
				"error", msg.Metadata.Get(middleware.ReasonForPoisonedKey))
		}
		return out, err
	}
}

// classify sits inside the poison queue: it labels a permanent failure with
// its reason, in the metadata the dead-letter topic keeps and in the verdict.
func classify(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if r := reason(err); r != "" {
			msg.Metadata.Set(MetaReason, r)
			if v, ok := msg.Context().Value(verdictKey{}).(*verdict); ok {
				v.reason = r
			}
		}
		return out, err
	}
}
