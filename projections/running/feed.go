package running

import (
	"context"
	"fmt"
	"sync"
	"time"

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
	// Range calls fn with every event whose time is in [from, to).
	Range(ctx context.Context, from, to time.Time, fn func(events.Event) error) error
}

// The projection reads the event log.
var _ eventLog = (*events.Log)(nil)

// Handle folds one event of the live feed into the list. It fails only
// when the log, which must be asked about a job it does not know, cannot be
// read: an error matching events.ErrUnavailable, to be retried. Redelivery
// is harmless: applying an event twice changes nothing.
func (p *Projection) Handle(ctx context.Context, e events.Event) error {
	return p.apply(ctx, &e)
}

// apply folds one event into the list. An event of a job that is neither
// listed nor recently finished, and older than that memory or with no
// state, may belong to a job that finished long ago: the job's whole
// history decides.
//
// An event that is not DONE re-opens its job in the log's index when it is
// appended, even after the job's DONE event. So the job is pruned from the
// index whenever the feed finds it finished by an event that is not DONE,
// and whenever a DONE event closes a listed job: an event appended after
// the DONE one may have been delivered before it and listed the job. Every
// entry a late event sets is thus followed, once the feed has delivered the
// events of its job, by a prune.
func (p *Projection) apply(ctx context.Context, e *events.Event) error {
	done := false
	e.DropImplausible()
	switch p.store.applyEvent(e, p.cfg.Now()) {
	case appliedClosed:
		p.pruner.add(e.Job)
	case appliedFinished:
		done = true
	case appliedUnknown:
		evs, err := p.log.JobEvents(ctx, e.Job)
		if err != nil {
			return fmt.Errorf("reading the history of job %s: %w", e.Job, err)
		}
		plausible(evs)
		done = p.store.applyRevealed(e, evs, p.cfg.Now())
	}
	if done && e.State != events.StateDone {
		p.pruner.add(e.Job)
	}
	return nil
}

// Run flags stale jobs every SweepInterval and, apart, so that a Bigtable
// that does not answer never holds the sweep, prunes finished jobs from
// the log's open-jobs index every PruneInterval, until ctx ends, then ends
// every open stream (Close).
func (p *Projection) Run(ctx context.Context) error {
	defer p.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { p.pruneEvery(ctx) })
	sweep := time.NewTicker(p.cfg.SweepInterval)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sweep.C:
			p.store.sweep(p.cfg.Now())
		}
	}
}

// pruneEvery flushes the pruner, and sweeps the index when its queue
// overflowed (pruneTick), every PruneInterval until ctx ends.
func (p *Projection) pruneEvery(ctx context.Context) {
	prune := time.NewTicker(p.cfg.PruneInterval)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-prune.C:
			p.pruneTick(ctx)
		}
	}
}
