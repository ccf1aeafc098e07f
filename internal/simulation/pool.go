package simulation

import "slices"

// pool is capacity jobs compete for: a reservation shared by the projects
// assigned to it, or a project's on-demand capacity in one location. A
// pool runs a bounded number of jobs at once; the others wait, interactive
// ones first, as BigQuery queues queries when a reservation is busy.
type pool struct {
	// name is the reservation's resource name, or "unreserved".
	name     string
	limit    int
	running  int
	onDemand bool
	// queued jobs by priority, each in arrival order.
	interactive, batch []*job
}

// admits reports whether j may start now.
func (pl *pool) admits(j *job) bool {
	if j.batch() {
		// Batch queries run when the pool has room to spare.
		return !pl.onDemand && pl.running < pl.limit*6/10 && len(pl.interactive) == 0 && len(pl.batch) == 0
	}
	return pl.running < pl.limit && len(pl.interactive) == 0
}

func (pl *pool) enqueue(j *job) {
	if j.batch() {
		pl.batch = append(pl.batch, j)
		return
	}
	pl.interactive = append(pl.interactive, j)
}

// next removes and returns the first queued job that may start now.
func (pl *pool) next() *job {
	switch {
	case len(pl.interactive) > 0 && pl.running < pl.limit:
		j := pl.interactive[0]
		pl.interactive = pl.interactive[1:]
		return j
	case len(pl.interactive) == 0 && len(pl.batch) > 0 && pl.running < pl.limit*6/10:
		j := pl.batch[0]
		pl.batch = pl.batch[1:]
		return j
	}
	return nil
}

// remove takes a queued job out of the queue, as when it is cancelled.
func (pl *pool) remove(j *job) {
	pl.interactive = slices.DeleteFunc(pl.interactive, func(q *job) bool { return q == j })
	pl.batch = slices.DeleteFunc(pl.batch, func(q *job) bool { return q == j })
}
