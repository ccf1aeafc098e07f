package running

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bqobserver/bqobserver/events"
)

// Rebuild loads every job whose last known state is not DONE, however old,
// from the log: it lists the jobs the log holds open, reads their events in
// batches (RebuildWorkers at a time), folds them into the list and tells the
// log which of them turned out finished, so the next rebuild skips them. Its
// cost grows with the number of open jobs, not with the log's history.
//
// The live feed may run at the same time, and its subscription should exist
// before Rebuild starts: an event appended meanwhile then arrives on the
// feed too, and folding it twice is harmless. Until Rebuild returns nil the API answers
// 503. The word index of the jobs is built after it returns (see
// indexBuild). A failed rebuild (events.ErrUnavailable when the log cannot be read)
// may be retried; a cancelled one returns ctx's error and marks nothing.
func (p *Projection) Rebuild(ctx context.Context) error {
	start := time.Now()
	p.store.startMemory(p.cfg.Now())
	var finished, missing atomic.Int64
	open, err := p.openInBatches(ctx, func(ctx context.Context, batch []events.JobKey) error {
		return p.rebuildBatch(ctx, batch, &finished, &missing)
	})
	if err != nil {
		return fmt.Errorf("rebuilding the running jobs: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rebuilding the running jobs: %w", err)
	}
	p.store.setQuiet(false)
	p.rebuilt.Store(true)
	took := time.Since(start)
	p.metrics.rebuilt(open, p.Len(), int(finished.Load()), took)
	p.logger.InfoContext(ctx, "rebuilt the running jobs from the event log",
		"open", open, "running", p.Len(), "finished", finished.Load(), "without_events", missing.Load(),
		"duration", took.String())
	if b := p.store.indexing(); b != nil && b.jobs > 0 {
		go func() {
			<-b.done
			p.logger.Info("built the word index of the running jobs", "jobs", b.jobs, "duration", b.took.String())
		}()
	}
	return nil
}

// openInBatches lists the jobs the log holds open and calls read with batches
// of them as the listing goes (see batches), so that reading the first jobs
// overlaps listing the others. It returns how many jobs were listed.
func (p *Projection) openInBatches(ctx context.Context, read func(context.Context, []events.JobKey) error) (int, error) {
	return p.batches(ctx, func(ctx context.Context, emit func(events.JobKey) error) error {
		return p.log.OpenJobs(ctx, emit) // it says what failed
	}, read)
}

// inBatches calls read with batches of keys (see batches).
func (p *Projection) inBatches(ctx context.Context, keys []events.JobKey, read func(context.Context, []events.JobKey) error) error {
	_, err := p.batches(ctx, func(_ context.Context, emit func(events.JobKey) error) error {
		for _, k := range keys {
			if err := emit(k); err != nil {
				return err
			}
		}
		return nil
	}, read)
	return err
}

// batches calls read with batches of RebuildBatch of the jobs list emits,
// for RebuildWorkers batches at a time, as list goes. It returns how many
// jobs list emitted and the first error, which cancels the context of the
// others.
func (p *Projection) batches(ctx context.Context, list func(context.Context, func(events.JobKey) error) error,
	read func(context.Context, []events.JobKey) error) (int, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.cfg.RebuildWorkers + 1) // the listing holds one
	n := 0
	g.Go(func() error {
		batch := make([]events.JobKey, 0, p.cfg.RebuildBatch)
		err := list(gctx, func(k events.JobKey) error {
			n++
			if batch = append(batch, k); len(batch) == p.cfg.RebuildBatch {
				full := batch
				g.Go(func() error { return read(gctx, full) })
				batch = make([]events.JobKey, 0, p.cfg.RebuildBatch)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			g.Go(func() error { return read(gctx, batch) })
		}
		return nil
	})
	err := g.Wait()
	return n, err
}

// rebuildBatch folds the history of a batch of open jobs into the list and
// prunes the finished ones from the log's open set. A job without events is
// left open: its events may not be written yet.
func (p *Projection) rebuildBatch(ctx context.Context, keys []events.JobKey, finished, missing *atomic.Int64) error {
	var mu sync.Mutex
	var done []events.JobKey
	seen := 0
	err := p.log.ReadJobs(ctx, keys, func(k events.JobKey, evs []events.Event) error {
		plausible(evs)
		isDone := p.store.applyHistory(k, evs, p.cfg.Now())
		mu.Lock()
		defer mu.Unlock()
		seen++
		if isDone {
			done = append(done, k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading %d open jobs: %w", len(keys), err)
	}
	finished.Add(int64(len(done)))
	missing.Add(int64(len(keys) - seen))
	if len(done) == 0 {
		return nil
	}
	if err := p.log.PruneOpen(ctx, done); err != nil {
		return fmt.Errorf("pruning %d finished jobs: %w", len(done), err)
	}
	return nil
}
