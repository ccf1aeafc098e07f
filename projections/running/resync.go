package running

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// Resync brings the list up to date with the log after the live feed may
// have missed events: its subscription was lost and created again, and
// Pub/Sub keeps nothing for a subscription that does not exist. It folds
// again, from their history in the log, every job the log holds open and
// every listed job, so that a job that finished meanwhile leaves the list
// and one that started meanwhile enters it. Folding is idempotent, so the
// live feed may run at the same time.
func (p *Projection) Resync(ctx context.Context) error {
	start := time.Now()
	keys := p.store.keys()
	listed := len(keys)
	err := p.log.OpenJobs(ctx, func(k events.JobKey) error {
		keys = append(keys, k)
		return nil
	})
	if err != nil {
		return fmt.Errorf("resynchronising the running jobs: listing open jobs: %w", err)
	}
	var finished, missing atomic.Int64
	err = p.inBatches(ctx, keys, func(ctx context.Context, batch []events.JobKey) error {
		return p.rebuildBatch(ctx, batch, &finished, &missing)
	})
	if err != nil {
		return fmt.Errorf("resynchronising the running jobs: %w", err)
	}
	p.logger.InfoContext(ctx, "resynchronised the running jobs with the event log", "listed_before", listed,
		"open", len(keys)-listed, "running", p.Len(), "finished", finished.Load(), "duration", time.Since(start).String())
	return nil
}

// keys returns the keys of the listed jobs.
func (s *store) keys() []events.JobKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := make([]events.JobKey, 0, len(s.jobs))
	for k := range s.jobs {
		keys = append(keys, k)
	}
	return keys
}
