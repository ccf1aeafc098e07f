package history

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/sync/errgroup"

	"github.com/bqobserver/bqobserver/events"
)

// ReplayOptions say what Replay writes.
type ReplayOptions struct {
	// From and To bound the range of the log: every job with an event in
	// [From, To) is written.
	From, To time.Time
	// Project, when set, limits the replay to the jobs of that project.
	Project string
	// Progress, if set, is called with 0 and the number of jobs once the
	// range is read, then with the number of jobs done after each one.
	Progress func(done, total int)
	// InFlight bounds the versions being written at once, so that appends
	// fill up. Default 2000.
	InFlight int
	// MaxRetry bounds the retries of a version BigQuery could not take for
	// a transient reason, before Replay gives up. Default 2 minutes.
	MaxRetry time.Duration
}

// ReplayStats count what Replay did.
type ReplayStats struct {
	Events   int // events read from the range
	Jobs     int // jobs with an event in the range
	Written  int // versions written
	Rejected []Rejection
}

// Rejection is a version BigQuery refused for good, and why.
type Rejection struct {
	Job events.JobKey
	Err error
}

// Replay writes the current version of every job with an event in a range
// of the log, folded from all its events (also those outside the range). It
// is idempotent: the versions it writes are what the sink writes for a
// job's latest event, and the views keep one row per job whatever else is
// in the table. A version BigQuery refuses is counted in the stats and does
// not stop the replay; a transient failure is retried until MaxRetry, then
// ends the replay with an error (the stats say how far it got).
func (s *Sink) Replay(ctx context.Context, o ReplayOptions) (ReplayStats, error) {
	if o.InFlight == 0 {
		o.InFlight = 2000
	}
	if o.MaxRetry == 0 {
		o.MaxRetry = 2 * time.Minute
	}
	keys, n, err := jobsIn(ctx, s.log, o.From, o.To, o.Project)
	stats := ReplayStats{Events: n, Jobs: len(keys)}
	if err != nil {
		return stats, err
	}
	progress := o.Progress
	if progress == nil {
		progress = func(int, int) {}
	}
	progress(0, len(keys))
	var mu sync.Mutex
	done := 0
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.InFlight)
	readErr := s.log.ReadJobs(gctx, keys, func(key events.JobKey, evs []events.Event) error {
		j, d := s.v.version(key, evs)
		g.Go(func() error {
			err := s.writeRetrying(gctx, &j, &d, o.MaxRetry)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, errRowRejected):
				stats.Rejected = append(stats.Rejected, Rejection{Job: key, Err: err})
			case err != nil:
				return err
			default:
				stats.Written++
			}
			done++
			progress(done, len(keys))
			return nil
		})
		return gctx.Err()
	})
	if err := errors.Join(g.Wait(), readErr); err != nil {
		return stats, fmt.Errorf("replaying %s to %s: %w", o.From.Format(time.RFC3339), o.To.Format(time.RFC3339), err)
	}
	return stats, nil
}

// writeRetrying writes a version, retrying transient failures with backoff
// until maxElapsed.
func (s *Sink) writeRetrying(ctx context.Context, j *events.Job, d *Derived, maxElapsed time.Duration) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := s.write(ctx, j, d)
		if errors.Is(err, errRowRejected) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithMaxElapsedTime(maxElapsed))
	return err
}
