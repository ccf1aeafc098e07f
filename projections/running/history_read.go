package running

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/projections/access"
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

// readHistory returns a store of the jobs that finished in sp and that
// scope sees, each folded from its whole history in the log with the shared
// fold. A job is found through its DONE events, which the log's time rows
// hold at their event times: those in sp, widened by Lateness for a DONE
// event timed after the job's end. It is in sp when it finished there: at
// its end time or, when no event knows that, at its first DONE event.
func (p *Projection) readHistory(ctx context.Context, sp span, scope access.Scope) (*store, error) {
	select {
	case p.history <- struct{}{}:
		defer func() { <-p.history }()
	case <-ctx.Done():
		return nil, errHistoryBusy
	}
	keys, err := p.finishedKeys(ctx, sp, scope)
	if err != nil {
		return nil, err
	}
	st := newStore(p.cfg, nil)
	var seen atomic.Int64
	err = p.inBatches(ctx, keys, func(ctx context.Context, batch []events.JobKey) error {
		return p.log.ReadJobs(ctx, batch, func(k events.JobKey, evs []events.Event) error {
			j := events.Fold(k, evs)
			if at, ok := finishedAt(&j, evs); ok && sp.contains(at) && scope.Sees(j.Principal) {
				if seen.Add(1) > int64(p.cfg.History.MaxJobs) {
					return &tooManyJobs{max: p.cfg.History.MaxJobs, sp: sp}
				}
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

// ownScan is how many times MaxJobs a request of a caller who sees only its
// own jobs may look at: others' jobs found through DONE events that name
// no one are folded before they can be told apart, and must not make the
// caller's request fail while its own jobs are fewer than MaxJobs.
const ownScan = 10

// finishedKeys returns the jobs with a DONE event in sp, widened by
// Lateness, each once, or tooManyJobs when they are more than MaxJobs. For
// a caller who sees only its own jobs it passes over a DONE event that
// names someone else as the job's principal, so that other people's jobs
// neither count against the caller's limit nor tell it, through a refusal,
// how many finished; a job whose DONE events name no one is folded, and
// kept only if the caller sees it, up to ownScan times MaxJobs of them.
func (p *Projection) finishedKeys(ctx context.Context, sp span, scope access.Scope) ([]events.JobKey, error) {
	seen := map[events.JobKey]struct{}{}
	var keys []events.JobKey
	_, own := scope.Owner()
	limit := p.cfg.History.MaxJobs
	if own {
		limit *= ownScan
	}
	err := p.log.Range(ctx, sp.from, sp.to.Add(p.cfg.History.Lateness), func(e events.Event) error {
		if e.State != events.StateDone || own && e.Principal != "" && !scope.Sees(e.Principal) {
			return nil
		}
		if _, ok := seen[e.Job]; ok {
			return nil
		}
		if len(keys) == limit {
			return &tooManyJobs{max: limit, sp: sp}
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
