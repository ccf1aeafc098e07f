package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/auditlog"
)

// Metadata set on an entry that goes to the dead-letter topic, beside the
// original attributes and Watermill's reason_poisoned (the error text) and
// handler_poisoned.
const (
	// MetaReason is a stable identifier of why the entry was dead-lettered:
	// a decoder reason (bad_json, not_audit_entry, unknown_payload,
	// no_job_id, no_time, bad_field, bad_envelope), invalid_event, or panic.
	MetaReason = "bqobserver_reason"
	// MetaIntake says how the entry arrived: pull or push.
	MetaIntake = "bqobserver_intake"
)

// Intakes, for metrics and dead-letter metadata.
const (
	intakePull = "pull"
	intakePush = "push"
)

// outcome is what became of one delivery; the handler fills it in and the
// observing middleware counts it once, however many attempts it took.
type outcome struct {
	intake string
	skip   string        // skip reason, for a well-formed entry without a job event
	kinds  []events.Kind // kinds of the events appended
	reason string        // why the entry is permanently unusable
}

const (
	outcomeAppended     = "appended"
	outcomeSkipped      = "skipped"
	outcomeDeadLettered = "dead_lettered"
	outcomeHandedBack   = "handed_back"
)

// label names the outcome given the error the whole chain returned: a
// permanent failure that the poison queue took ends without error.
func (o *outcome) label(err error) string {
	switch {
	case err != nil:
		return outcomeHandedBack
	case o.reason != "":
		return outcomeDeadLettered
	case o.skip != "":
		return outcomeSkipped
	}
	return outcomeAppended
}

type outcomeKey struct{}

func withOutcome(ctx context.Context, o *outcome) context.Context {
	return context.WithValue(ctx, outcomeKey{}, o)
}

// outcomeOf returns the delivery's outcome, or a throwaway one when the
// message did not pass the observing middleware.
func outcomeOf(ctx context.Context) *outcome {
	if o, ok := ctx.Value(outcomeKey{}).(*outcome); ok {
		return o
	}
	return &outcome{}
}

// permanentError is a failure that no retry can mend: the entry goes to the
// dead-letter topic with reason.
type permanentError struct {
	reason string
	err    error
}

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// isPermanent decides, by error kind, between dead-lettering and retrying:
// malformed input and panics are permanent; everything else (the event log
// or Pub/Sub unavailable, deadlines, shutdown) is transient and is retried,
// then handed back to Pub/Sub, never dead-lettered.
func isPermanent(err error) bool {
	var perm *permanentError
	var panicked middleware.RecoveredPanicError
	return errors.As(err, &perm) || errors.Is(err, events.ErrInvalid) || errors.As(err, &panicked)
}

// handle is the pipeline's handler: decode the entry, append its events to
// the log, and return them as messages for the events topic. The router
// (or the push intake) publishes them and only then acknowledges the entry.
func (p *Pipeline) handle(msg *message.Message) ([]*message.Message, error) {
	o := outcomeOf(msg.Context())
	o.skip, o.kinds, o.reason = "", nil, ""
	evs, err := auditlog.Decode(msg.Payload)
	var skip *auditlog.SkipError
	var bad *auditlog.Error
	switch {
	case errors.As(err, &skip):
		o.skip = string(skip.Reason)
		return nil, nil
	case errors.As(err, &bad):
		return nil, &permanentError{reason: string(bad.Reason), err: err}
	case err != nil:
		return nil, &permanentError{reason: "invalid_event", err: err}
	}
	if err := p.batcher.Append(msg.Context(), evs); err != nil {
		if errors.Is(err, events.ErrInvalid) {
			return nil, &permanentError{reason: "invalid_event", err: err}
		}
		return nil, fmt.Errorf("appending the events of entry %s: %w", msg.UUID, err)
	}
	out := make([]*message.Message, len(evs))
	for i := range evs {
		payload, attrs, err := events.MarshalMessage(&evs[i])
		if err != nil {
			return nil, &permanentError{reason: "invalid_event", err: err}
		}
		out[i] = message.NewMessage(evs[i].ID, payload)
		out[i].Metadata = attrs
		o.kinds = append(o.kinds, evs[i].Kind)
	}
	return out, nil
}

// observe is the outermost middleware: it gives the delivery an outcome,
// and counts and times it once the chain is done with it.
func (p *Pipeline) observe(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		start := time.Now()
		o := outcomeOf(msg.Context())
		if o.intake == "" {
			o = &outcome{intake: intakePull}
			msg.SetContext(withOutcome(msg.Context(), o))
		}
		out, err := h(msg)
		p.metrics.observe(o.intake, o, err, time.Since(start))
		switch o.label(err) {
		case outcomeDeadLettered:
			p.log.Warn("audit entry dead-lettered", "reason", o.reason, "message_id", msg.UUID,
				"intake", o.intake, "error", msg.Metadata.Get(middleware.ReasonForPoisonedKey))
		case outcomeHandedBack:
			p.log.Warn("audit entry handed back for redelivery", "message_id", msg.UUID, "intake", o.intake, "error", err.Error())
		}
		return out, err
	}
}

// classify sits inside the poison queue: it labels a permanent failure with
// its reason, in the outcome and in the metadata the dead-letter topic keeps.
func (p *Pipeline) classify(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err == nil || !isPermanent(err) {
			return out, err
		}
		o := outcomeOf(msg.Context())
		var perm *permanentError
		switch {
		case errors.As(err, &perm):
			o.reason = perm.reason
		case errors.As(err, new(middleware.RecoveredPanicError)):
			o.reason = "panic"
		default:
			o.reason = "invalid_event"
		}
		msg.Metadata.Set(MetaReason, o.reason)
		msg.Metadata.Set(MetaIntake, o.intake)
		return out, err
	}
}
