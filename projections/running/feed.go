package running

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/bqobserver/bqobserver/events"
)

// eventLog is what the projection reads from the event log (an *events.Log).
type eventLog interface {
	// JobEvents returns every event of one job.
	JobEvents(ctx context.Context, key events.JobKey) ([]events.Event, error)
	// ReadJobs calls fn with the events of each of keys that has any.
	ReadJobs(ctx context.Context, keys []events.JobKey, fn func(events.JobKey, []events.Event) error) error
	// OpenJobs calls fn with every job that may still be running (a
	// superset), at a cost proportional to their number.
	OpenJobs(ctx context.Context, fn func(events.JobKey) error) error
	// PruneOpen records that jobs are finished, so OpenJobs skips them.
	PruneOpen(ctx context.Context, keys []events.JobKey) error
}

// The projection reads the event log.
var _ eventLog = (*events.Log)(nil)

// HandleMessage is the Watermill handler of the projection's own
// subscription to the events topic: it folds the message's event into the
// list. A payload that is not an event is an error matching events.ErrInvalid
// (for the poison queue); failing to read the log about an unknown, old job
// is an error matching events.ErrUnavailable (to be retried). Redelivery is
// harmless: applying an event twice changes nothing.
func (p *Projection) HandleMessage(msg *message.Message) error {
	e, err := events.UnmarshalMessage(msg.Payload)
	if err != nil {
		return fmt.Errorf("handling message %s: %w", msg.UUID, err)
	}
	if err := p.apply(msg.Context(), &e); err != nil {
		return fmt.Errorf("handling message %s: %w", msg.UUID, err)
	}
	return nil
}

// apply folds one event into the list. An event of a job that is neither
// listed nor recently finished, and older than that memory, may belong to a
// job that finished long ago: the job's whole history decides.
func (p *Projection) apply(ctx context.Context, e *events.Event) error {
	if !p.store.applyEvent(e, p.cfg.Now()) {
		return nil
	}
	evs, err := p.log.JobEvents(ctx, e.Job)
	if err != nil {
		return fmt.Errorf("reading the history of job %s: %w", e.Job, err)
	}
	p.store.applyHistory(e.Job, append(evs, *e), p.cfg.Now())
	return nil
}

// Run flags stale jobs every SweepInterval until ctx ends.
func (p *Projection) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			p.store.sweep(p.cfg.Now())
		}
	}
}
