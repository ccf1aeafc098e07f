package running

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// maxPending bounds the jobs waiting to be pruned. Past it, for example
// after a long Bigtable outage, more are not queued: they are counted, the
// index stays a superset of the running jobs, and once the queue has
// drained a sweep of the index (Projection.sweepIndex) finds them.
const maxPending = 100_000

// Each flush prunes at most pruneBatch jobs, within pruneTimeout: a
// Bigtable that does not answer holds a flush no longer than that, and the
// jobs wait for the next one; after an outage the jobs queued meanwhile
// leave the index pruneBatch a flush.
const (
	pruneBatch   = 10_000
	pruneTimeout = 10 * time.Second
	// sweepTimeout bounds one sweep of the index: listing it and reading
	// the jobs the list does not hold; after one that failed, the next
	// waits sweepBackoff.
	sweepTimeout = time.Minute
	sweepBackoff = 30 * time.Second
)

// pruner takes finished jobs out of the log's open-jobs index as the live
// feed finds them there, so that the index stays close to the running jobs
// rather than growing until the next rebuild.
//
// A job enters the index with every event that is not DONE, including one
// appended after the job's DONE event. The feed sees every event after it
// was appended, and hands the job here when that event finds it finished,
// or when it is the DONE event that closes the listed job (the late event
// may have been delivered first). Removing a finished job is always safe
// (DONE is terminal), and a later event that re-opens it again is seen, and
// pruned, in turn. The jobs are pruned in batches, every PruneInterval; a
// batch that fails is tried again. Jobs still queued when the projection
// stops stay in the index until the next rebuild prunes them. A job that
// finds the queue full is counted and left out, and marks the queue
// overflowed: the projection sweeps the index once the queue has drained to half its size
// (sweepDue).
type pruner struct {
	log     eventLog
	logger  *slog.Logger
	m       *metrics
	timeout time.Duration // bounds one flush (pruneTimeout)
	max     int           // bounds the queue (maxPending)

	mu         sync.Mutex
	pending    map[events.JobKey]struct{}
	overflowed bool // a job was left out since the last sweep began
}

func newPruner(log eventLog, logger *slog.Logger, m *metrics) *pruner {
	return &pruner{log: log, logger: logger, m: m, timeout: pruneTimeout, max: maxPending, pending: map[events.JobKey]struct{}{}}
}

// add queues a finished job for pruning, or counts it and marks the queue
// overflowed when the queue is full. It reports whether the job is queued.
func (p *pruner) add(key events.JobKey) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.enqueue(key) {
		return true
	}
	if !p.overflowed {
		p.logger.Warn("the queue of finished jobs to prune from the open-jobs index is full; "+
			"the jobs left out stay in the index until a sweep of the index, once the queue has drained, finds them",
			"queued", len(p.pending))
	}
	p.overflowed = true
	p.m.pruneLeftOut.Inc()
	return false
}

// offer queues a finished job a sweep of the index found, when there is
// room, and reports whether it did. A job it has no room for is neither
// counted nor marked: it stays in the index for the sweep that follows
// (sweepAgain), and was counted when the feed left it out.
func (p *pruner) offer(key events.JobKey) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.enqueue(key)
}

// enqueue queues key unless the queue is full, and reports whether key is
// queued. p.mu is held.
func (p *pruner) enqueue(key events.JobKey) bool {
	if _, ok := p.pending[key]; ok {
		return true
	}
	if len(p.pending) < p.max {
		p.pending[key] = struct{}{}
		return true
	}
	return false
}

// queued returns how many jobs wait to be pruned.
func (p *pruner) queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending)
}

// sweepDue reports whether jobs were left out of the queue and the queue
// has drained since to half its size, and clears the mark: the caller
// sweeps the index, and calls sweepAgain when the sweep does not finish.
// Half, not empty: under steady load jobs finish during every flush, so
// the queue is never empty when asked, and a sweep waiting for that would
// leave the jobs left out in the index until the next restart.
func (p *pruner) sweepDue() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	due := p.overflowed && len(p.pending) <= p.max/2
	if due {
		p.overflowed = false
	}
	return due
}

// sweepAgain marks the queue overflowed again, after a sweep that did not
// finish.
func (p *pruner) sweepAgain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.overflowed = true
}

// flush prunes up to pruneBatch of the queued jobs, within p.timeout; on
// failure they stay queued.
func (p *pruner) flush(ctx context.Context) {
	p.mu.Lock()
	keys := make([]events.JobKey, 0, min(len(p.pending), pruneBatch))
	for k := range p.pending {
		if len(keys) == pruneBatch {
			break
		}
		keys = append(keys, k)
		delete(p.pending, k)
	}
	p.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if err := p.log.PruneOpen(ctx, keys); err != nil {
		if parent.Err() == nil {
			p.logger.WarnContext(ctx, "pruning finished jobs from the open-jobs index failed; trying again", "jobs", len(keys), "error", err.Error())
		}
		for _, k := range keys {
			p.add(k)
		}
		return
	}
	p.m.pruned.Add(float64(len(keys)))
}

// The outcomes of a sweep of the index (metrics.sweeps).
const (
	sweepDone   = "done"
	sweepFull   = "full"
	sweepFailed = "failed"
)

// errQueueFull stops a sweep whose finds filled the prune queue.
var errQueueFull = errors.New("the prune queue is full")

// pruneTick flushes the pruner and, when finished jobs were left out of its
// full queue and the queue has drained to half its size since, sweeps the index for them
// (not within sweepBackoff of a sweep that failed).
func (p *Projection) pruneTick(ctx context.Context) {
	p.pruner.flush(ctx)
	if p.cfg.Now().Before(p.sweepAfter) || !p.pruner.sweepDue() {
		return
	}
	found, err := p.sweepIndex(ctx)
	switch {
	case errors.Is(err, errQueueFull):
		p.pruner.sweepAgain()
		p.metrics.sweeps.WithLabelValues(sweepFull).Inc()
		p.logger.InfoContext(ctx, "the sweep of the open-jobs index filled the prune queue; another sweep follows once it has drained", "finished", found)
	case err != nil:
		p.pruner.sweepAgain()
		if ctx.Err() == nil {
			p.sweepAfter = p.cfg.Now().Add(sweepBackoff)
			p.metrics.sweeps.WithLabelValues(sweepFailed).Inc()
			p.logger.WarnContext(ctx, "sweeping the open-jobs index for finished jobs failed; trying again", "error", err.Error(), "in", sweepBackoff.String())
		}
	default:
		p.metrics.sweeps.WithLabelValues(sweepDone).Inc()
		p.logger.InfoContext(ctx, "swept the open-jobs index for the finished jobs the full prune queue had left out", "finished", found)
	}
}

// sweepIndex finds the finished jobs in the log's open-jobs index that the
// prune queue had no room for, within sweepTimeout: it lists the index,
// reads the events of every job the list does not hold (RebuildWorkers
// batches at a time, as the listing goes) and queues those whose events
// end DONE. A job the list holds is running as far as the feed knows, and
// one that is not DONE in the log may have events the feed has not
// delivered yet: both are left to the feed. It returns how many it queued,
// and errQueueFull when they filled the queue.
func (p *Projection) sweepIndex(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, sweepTimeout)
	defer cancel()
	var found atomic.Int64
	_, err := p.batches(ctx, func(ctx context.Context, emit func(events.JobKey) error) error {
		return p.log.OpenJobs(ctx, func(k events.JobKey) error {
			if p.store.listed(k) {
				return nil
			}
			return emit(k)
		})
	}, func(ctx context.Context, batch []events.JobKey) error {
		return p.log.ReadJobs(ctx, batch, func(k events.JobKey, evs []events.Event) error {
			if j := events.Fold(k, evs); !j.Done() {
				return nil
			}
			if !p.pruner.offer(k) {
				return errQueueFull
			}
			found.Add(1)
			return nil
		})
	})
	if err != nil {
		return int(found.Load()), fmt.Errorf("sweeping the open-jobs index: %w", err)
	}
	return int(found.Load()), nil
}
