package running

import (
	"cmp"
	"slices"
	"time"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/projections/access"
)

// loss counts, by project, the jobs enrichment closed (reconciled: their
// completion entry never came) or listed (discovered: the log did not
// know them), as the list saw them change since this replica started:
// the measure of how much the audit sink loses. Every replica sees every
// event, so every replica counts alike. A job is counted when it leaves
// the list by a reconciliation, or enters it by an event of the jobs API;
// a job whose audit entry came first is not counted.
type loss struct {
	since time.Time
	by    map[string]*lossCount
}

type lossCount struct {
	Reconciled int `json:"reconciled"`
	Discovered int `json:"discovered"`
}

// sourceAPI is the Source.Format of events enrichment appends.
const sourceAPI = "api"

func newLoss(since time.Time) loss { return loss{since: since, by: map[string]*lossCount{}} }

func (l *loss) count(project string) *lossCount {
	c := l.by[project]
	if c == nil {
		c = &lossCount{}
		l.by[project] = c
	}
	return c
}

// closed counts a job that left the list, if a reconciliation closed it.
func (l *loss) closed(j *events.Job) {
	if j.Reconciled {
		l.count(j.Key.Project).Reconciled++
	}
}

// listed counts a job that entered the list by e, if e came from the jobs
// API.
func (l *loss) listed(e *events.Event) {
	if e.Source.Format == sourceAPI {
		l.count(e.Job.Project).Discovered++
	}
}

// lossJSON is the audit-loss part of the summary.
type lossJSON struct {
	Since time.Time `json:"since"`
	lossCount
	ByProject []lossGroup `json:"by_project"`
}

type lossGroup struct {
	Key string `json:"key"`
	lossCount
}

// snapshot returns the counts, in all and by project, most first, to a
// caller who sees every job; to others, who would learn of projects and
// jobs they may not see, none.
func (l *loss) snapshot(sc access.Scope) lossJSON {
	out := lossJSON{Since: l.since.UTC(), ByProject: make([]lossGroup, 0, len(l.by))}
	if !seesAll(sc) {
		return out
	}
	for p, c := range l.by {
		out.Reconciled += c.Reconciled
		out.Discovered += c.Discovered
		out.ByProject = append(out.ByProject, lossGroup{Key: p, lossCount: *c})
	}
	slices.SortFunc(out.ByProject, func(a, b lossGroup) int {
		return cmp.Or(cmp.Compare(b.Reconciled+b.Discovered, a.Reconciled+a.Discovered), cmp.Compare(a.Key, b.Key))
	})
	return out
}

// applyRevealed folds the history of a job that was neither listed nor
// remembered, read from the log because of e, then e itself, and reports
// whether the job is finished; a job it lists because of an event of the
// jobs API is counted as discovered.
func (s *store) applyRevealed(e *events.Event, history []events.Event, now time.Time) (done bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.jobs[e.Job] != nil
	done = s.foldHistory(e.Job, append(history, *e), now)
	if !was && s.jobs[e.Job] != nil && !s.quiet {
		s.loss.listed(e)
	}
	return done
}
