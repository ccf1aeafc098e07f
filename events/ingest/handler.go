package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/auditlog"
	"github.com/bqobserver/bqobserver/events/bus"
)

// MetaIntake is set on every entry the pipeline handles, and so kept on
// the dead-letter topic beside bus.MetaReason: how the entry arrived, pull
// or push.
const MetaIntake = "bqobserver_intake"

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
	// dropped are the implausible values the decoder dropped.
	dropped []events.Dropped
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

// handle is the pipeline's handler: decode the entry and append its events
// through the appender, which also publishes them on the events topic. The
// entry is acknowledged only after that.
func (p *Pipeline) handle(msg *message.Message) ([]*message.Message, error) {
	o := outcomeOf(msg.Context())
	o.skip, o.kinds = "", nil
	evs, dropped, err := p.decoders.decode(msg.Payload, time.Now())
	o.dropped = dropped
	var skip *auditlog.SkipError
	var bad *auditlog.Error
	switch {
	case errors.As(err, &skip):
		o.skip = string(skip.Reason)
		return nil, nil
	case errors.As(err, &bad):
		return nil, bus.Permanent(string(bad.Reason), err)
	case err != nil:
		return nil, bus.Permanent(bus.ReasonInvalidEvent, err)
	}
	if err := p.appender.Append(msg.Context(), evs); err != nil {
		return nil, fmt.Errorf("appending the events of entry %s: %w", msg.UUID, err)
	}
	for i := range evs {
		o.kinds = append(o.kinds, evs[i].Kind)
	}
	return nil, nil
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
		msg.Metadata.Set(MetaIntake, o.intake)
		out, err := h(msg)
		o.reason = bus.DeadLetterReason(msg)
		p.metrics.observe(o.intake, o, err, time.Since(start))
		p.implausible.report(p.log, o, msg.UUID, err)
		return out, err
	}
}
