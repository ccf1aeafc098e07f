package running

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// errHistoryBusy is the answer to a history request that found every place
// for reading the log taken until its deadline.
var errHistoryBusy = errors.New("too many history requests are reading the event log at once")

// tooManyJobs refuses a range that holds more finished jobs than one
// request may fold.
type tooManyJobs struct {
	max int
	sp  span
}

func (e *tooManyJobs) Error() string {
	return fmt.Sprintf("the range from %s to %s holds more than %d finished jobs, more than one request may read; narrow it",
		stamp(e.sp.from), stamp(e.sp.to), e.max)
}

// readHistory returns a store of the jobs that finished in sp, each folded
// from its whole history in the log with the shared fold. A job is found
// through its DONE events, which the log's time rows hold at their event
// times: those in sp, widened by Lateness for a DONE event timed after the
// job's end. It is in sp when it finished there: at its end time or, when
// no event knows that, at its first DONE event.
func (p *Projection) readHistory(ctx context.Context, sp span) (*store, error) {
	select {
	case p.history <- struct{}{}:
		defer func() { <-p.history }()
	case <-ctx.Done():
		return nil, errHistoryBusy
	}
	keys, err := p.finishedKeys(ctx, sp)
	if err != nil {
		return nil, err
	}
	st := newStore(p.cfg, nil)
	err = p.inBatches(ctx, keys, func(ctx context.Context, batch []events.JobKey) error {
		return p.log.ReadJobs(ctx, batch, func(k events.JobKey, evs []events.Event) error {
			j := events.Fold(k, evs)
			if at, ok := finishedAt(&j, evs); ok && sp.contains(at) {
				st.addFinished(&j, at)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading the history of %d jobs: %w", len(keys), err)
	}
	return st, nil
}

// finishedKeys returns the jobs with a DONE event in sp, widened by
// Lateness, each once, or tooManyJobs when they are more than MaxJobs.
func (p *Projection) finishedKeys(ctx context.Context, sp span) ([]events.JobKey, error) {
	seen := map[events.JobKey]struct{}{}
	var keys []events.JobKey
	err := p.log.Range(ctx, sp.from, sp.to.Add(p.cfg.History.Lateness), func(e events.Event) error {
		if e.State != events.StateDone {
			return nil
		}
		if _, ok := seen[e.Job]; ok {
			return nil
		}
		if len(keys) == p.cfg.History.MaxJobs {
			return &tooManyJobs{max: p.cfg.History.MaxJobs, sp: sp}
		}
		seen[e.Job] = struct{}{}
		keys = append(keys, e.Job)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("finding the jobs that finished from %s to %s: %w", stamp(sp.from), stamp(sp.to), err)
	}
	return keys, nil
}

// finishedAt returns when a finished job ended: its end time, or when no
// event knows that, the time of its first DONE event. It reports false for
// a job that is not finished.
func finishedAt(j *events.Job, evs []events.Event) (time.Time, bool) {
	if !j.Done() {
		return time.Time{}, false
	}
	if !j.EndTime.IsZero() {
		return j.EndTime, true
	}
	var first time.Time
	for i := range evs {
		if e := &evs[i]; e.State == events.StateDone && (first.IsZero() || e.Time.Before(first)) {
			first = e.Time
		}
	}
	return first, !first.IsZero()
}

// addFinished lists a finished job that ended at end. Only a history's
// store holds finished jobs; the running list removes them.
func (s *store) addFinished(j *events.Job, end time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	en := &entry{job: *j}
	a := s.attrsOf(&en.job, nil, nil, false)
	a.setVal(valEnded, end.UnixMilli())
	s.insert(en, a)
}
