package enrich

import (
	"context"
	"sync"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// sweepSince is how far back a sweep lists a project's open jobs: BigQuery
// stops a query after 6 hours, and a batch query that has not started
// within 24 hours is cancelled.
const sweepSince = 30 * time.Hour

// task is one poll of one project: its open jobs as the log knows them,
// none for a sweep, and when its last poll started (the queue's order).
type task struct {
	project string
	open    []events.Job
	sweep   bool
	last    time.Time
}

// Run polls the due projects every Interval, and sweeps every
// SweepInterval, until ctx ends; then it waits for the polls in flight,
// which end with ctx. Workers workers take the polls from the queue in
// its order.
func (e *Enricher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { e.work(ctx, true) })
	t := time.NewTicker(e.cfg.Interval)
	defer t.Stop()
	for {
		e.dispatch(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Cycle polls every due project once and returns when those polls are
// done: Run's tick, for callers that drive time themselves.
func (e *Enricher) Cycle(ctx context.Context) {
	e.dispatch(ctx)
	e.work(ctx, false)
}

// work runs Workers workers that poll the queued tasks in the queue's
// order, and returns once they have ended: when ctx ends, or, unless
// wait, when the queue is empty.
func (e *Enricher) work(ctx context.Context, wait bool) {
	var wg sync.WaitGroup
	for range e.cfg.Workers {
		wg.Go(func() {
			for {
				t, ok := e.queue.next(ctx, wait)
				if !ok {
					return
				}
				e.run(ctx, t)
				e.queue.done(t.project)
			}
		})
	}
	wg.Wait()
}

// dispatch queues a poll of every project due: every project with open
// jobs that this replica holds, and when a sweep is due the active
// projects without open jobs. A project still being polled is skipped.
// Nothing is due before the job source is ready: until then it does not
// know what is open.
func (e *Enricher) dispatch(ctx context.Context) {
	if !e.deps.Jobs.Ready() || ctx.Err() != nil {
		return
	}
	e.expireActed()
	open := e.deps.Jobs.OpenJobs(e.owns)
	tasks := make([]task, 0, len(open))
	for p, jobs := range open {
		tasks = append(tasks, task{project: p, open: jobs})
	}
	tasks = append(tasks, e.sweep(ctx, open)...)
	e.mu.Lock()
	for i := range tasks {
		tasks[i].last = e.polled[tasks[i].project]
	}
	e.mu.Unlock()
	for _, t := range tasks {
		if !e.queue.push(t) {
			e.m.skipped.Inc()
		}
	}
}

// run polls t's project under its lease: the poll ends with the lease's
// hold.
func (e *Enricher) run(ctx context.Context, t task) {
	var w pollWindow
	if e.deps.Leases != nil {
		until, ok := e.deps.Leases.Until(t.project)
		if !ok {
			return // the lease was lost or is ending while the poll waited
		}
		w = newPollWindow(until.Sub(e.cfg.Now()))
	}
	e.mu.Lock()
	e.polled[t.project] = e.cfg.Now()
	e.mu.Unlock()
	e.poll(ctx, t, w)
}

// owns reports whether this replica polls project now.
func (e *Enricher) owns(project string) bool {
	if e.deps.Leases == nil {
		return true
	}
	_, ok := e.deps.Leases.Until(project)
	return ok
}

// sweep returns, when a sweep is due, a task for every project this
// replica holds that had jobs in the active window and has none open. It
// first records the projects with recent jobs as active today, and reads
// the denials other replicas recorded.
func (e *Enricher) sweep(ctx context.Context, open map[string][]events.Job) []task {
	now := e.cfg.Now()
	e.mu.Lock()
	due := e.deps.Registry != nil && now.Sub(e.lastSweep) >= e.cfg.SweepInterval
	if due {
		e.lastSweep = now
	}
	e.mu.Unlock()
	if !due {
		return nil
	}
	reg := e.deps.Registry
	var recent []string
	for _, p := range e.deps.Jobs.RecentProjects() {
		if e.owns(p) {
			recent = append(recent, p)
		}
	}
	if err := reg.Touch(ctx, recent, now); err != nil {
		e.deps.Logger.WarnContext(ctx, "recording active projects", "error", err.Error())
	}
	e.diag.refresh(ctx)
	active, err := reg.Active(ctx, now.Add(-e.cfg.ActiveWindow))
	if err != nil {
		e.deps.Logger.WarnContext(ctx, "listing active projects for the sweep", "error", err.Error())
		return nil
	}
	var tasks []task
	for _, p := range active {
		if _, busy := open[p]; !busy && e.owns(p) {
			tasks = append(tasks, task{project: p, sweep: true})
		}
	}
	e.m.swept.Add(float64(len(tasks)))
	return tasks
}

// actedMemory is how long a job enrichment closed or discovered is left
// alone: long enough for its event to reach the job source.
const actedMemory = 10 * time.Minute

// expireActed forgets the jobs acted on longer than actedMemory ago.
func (e *Enricher) expireActed() {
	limit := e.cfg.Now().Add(-actedMemory)
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, at := range e.acted {
		if at.Before(limit) {
			delete(e.acted, k)
		}
	}
}

// wasActed reports whether the job was closed or discovered lately.
func (e *Enricher) wasActed(k events.JobKey) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.acted[k]
	return ok
}

func (e *Enricher) markActed(keys []events.JobKey) {
	now := e.cfg.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range keys {
		e.acted[k] = now
	}
}
