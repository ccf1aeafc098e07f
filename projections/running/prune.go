package running

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/events"
)

// maxPending bounds the jobs waiting to be pruned. Past it, more are not
// remembered: the index stays a superset of the running jobs, and the next
// rebuild prunes them.
const maxPending = 100_000

// Each flush prunes at most pruneBatch jobs, within pruneTimeout: a
// Bigtable that does not answer holds a flush no longer than that, and the
// jobs wait for the next one; after an outage the jobs queued meanwhile
// leave the index pruneBatch a flush.
const (
	pruneBatch   = 10_000
	pruneTimeout = 10 * time.Second
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
// stops stay in the index until the next rebuild prunes them.
type pruner struct {
	log     eventLog
	logger  *slog.Logger
	pruned  prometheus.Counter // jobs removed from the index
	timeout time.Duration      // bounds one flush (pruneTimeout)

	mu      sync.Mutex
	pending map[events.JobKey]struct{}
}

func newPruner(log eventLog, logger *slog.Logger, pruned prometheus.Counter) *pruner {
	return &pruner{log: log, logger: logger, pruned: pruned, timeout: pruneTimeout, pending: map[events.JobKey]struct{}{}}
}

// add queues a finished job for pruning.
func (p *pruner) add(key events.JobKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) < maxPending {
		p.pending[key] = struct{}{}
	}
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
	p.pruned.Add(float64(len(keys)))
}
