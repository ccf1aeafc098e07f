package enrich

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	bq "google.golang.org/api/bigquery/v2"

	"github.com/bqobserver/bqobserver/enrich/jobsapi"
	"github.com/bqobserver/bqobserver/events"
)

// createMargin is subtracted from the oldest open job's creation time for
// a listing's minCreationTime, so that a creation time the log has from
// an audit entry's timestamp, a little after BigQuery's, still lists it.
const createMargin = time.Minute

// absence is an open job a listing lacked: when that was first seen, when
// a jobs.get last answered about it, how many answered 404 in a row, and
// its reconciliation once decided.
type absence struct {
	since    time.Time
	asked    time.Time
	notFound int
	// closing is appended at the next poll when the API said DONE too
	// recently for the completion entry to be late, and again while its
	// append fails: a decided job is not asked about again.
	closing *closing
}

// closing is a reconciliation decided, and why.
type closing struct {
	ev     events.Event
	reason string
}

// order puts first the absences whose reconciliation is decided (they
// cost no call), then the least recently asked about, so that a poll cut
// off by its deadline leaves the jobs it did not ask about to the next
// poll's first calls.
func (a *absence) order(o *absence) int {
	if (a.closing == nil) != (o.closing == nil) {
		if a.closing != nil {
			return -1
		}
		return 1
	}
	return a.asked.Compare(o.asked)
}

// listing is what a project's listing had, and when it was asked for.
type listing struct {
	at   time.Time
	keys map[events.JobKey]bool
}

// endedSince reports whether j is known to have ended after the listing
// was asked for, if it ended: the listing had it, or it was created
// later. A job that is neither may have ended long before.
func (l *listing) endedSince(j *events.Job) bool {
	created := cmp.Or(j.CreateTime, j.FirstSeen)
	return l.keys[j.Key] || (!l.at.IsZero() && created.After(l.at))
}

// batch is what one poll appends, and what it counts once appended.
type batch struct {
	events     []events.Event
	acted      []events.JobKey
	reconciled map[string]int // by reason
	discovered int
	progress   int
}

func (b *batch) reconcile(k events.JobKey, ev events.Event, reason string) {
	if b.reconciled == nil {
		b.reconciled = map[string]int{}
	}
	b.events = append(b.events, ev)
	b.acted = append(b.acted, k)
	b.reconciled[reason]++
}

// poll lists t's project and appends what changed: progress, discoveries
// and reconciliations. Its calls to the jobs API stop a reserve before the
// end of w; what they decided is appended all the same.
func (e *Enricher) poll(ctx context.Context, t task, w pollWindow) {
	start := time.Now()
	defer func() { e.m.pollSeconds.Observe(time.Since(start).Seconds()) }()
	work, cancel := w.work(ctx)
	defer cancel()
	asked := e.cfg.Now()
	listed, err := e.deps.API.ListOpen(work, t.project, e.since(t))
	e.diag.observe(work, t.project, jobsapi.MethodList, err)
	e.noteOutcome(work, t.project, jobsapi.MethodList, err)
	if err != nil && !errors.Is(err, jobsapi.ErrNotFound) {
		e.ended(work, t.project, len(t.open))
		return
	}
	// A project the API does not know lists nothing: its open jobs are
	// checked one by one, and closed as not found.
	now := e.cfg.Now()
	b := &batch{}
	l, ids, unknown := e.listed(t, listed, asked, now, b)
	left := 0
	if before := e.remember(t.project, l); e.sure(before) {
		for i := range unknown {
			e.discover(&unknown[i], now, b)
		}
		left = e.unlisted(work, t, l, before, ids, now, b)
	}
	e.ended(work, t.project, left)
	e.flush(ctx, w, t.project, b)
}

// remember keeps l as its project's last listing, and returns the one
// before.
func (e *Enricher) remember(project string, l listing) listing {
	e.mu.Lock()
	defer e.mu.Unlock()
	before := e.seen[project]
	e.seen[project] = l
	return before
}

// sure reports whether a poll may tell lost entries from entries on their
// way, and so reconcile and discover, rather than append progress only.
// Not while the job source is catching up: completions and insertions it
// has not applied yet are queued. Nor at the first listing of a project
// (before is zero): after a start or a takeover, the entries of the
// moments before may be queued still, as far as anyone can tell; the
// jobs it lacks get a cycle, like those a previous listing had.
func (e *Enricher) sure(before listing) bool {
	return !before.at.IsZero() && !e.deps.Jobs.CatchingUp()
}

// since is the minCreationTime of t's listing.
func (e *Enricher) since(t task) time.Time {
	if t.sweep {
		return e.cfg.Now().Add(-sweepSince)
	}
	var oldest time.Time
	for i := range t.open {
		j := &t.open[i]
		c := j.CreateTime
		if c.IsZero() || (!j.FirstSeen.IsZero() && j.FirstSeen.Before(c)) {
			c = j.FirstSeen
		}
		if oldest.IsZero() || c.Before(oldest) {
			oldest = c
		}
	}
	if oldest.IsZero() {
		return oldest
	}
	return oldest.Add(-createMargin)
}

// listed handles the jobs a listing asked for at asked returned: progress
// for those the log has open. It returns the listing, the job ids it saw,
// and the jobs the log does not have open, for discovery.
func (e *Enricher) listed(t task, listed []*bq.JobListJobs, asked, now time.Time, b *batch) (listing, map[string]bool, []observed) {
	open := make(map[events.JobKey]*events.Job, len(t.open))
	for i := range t.open {
		open[t.open[i].Key] = &t.open[i]
	}
	keys, ids := make(map[events.JobKey]bool, len(listed)), make(map[string]bool, len(listed))
	var unknown []observed
	for _, l := range listed {
		o, ok := fromListed(l)
		if !ok {
			continue
		}
		keys[o.key], ids[o.key.JobID] = true, true
		j, ok := open[o.key]
		if !ok {
			unknown = append(unknown, o)
			continue
		}
		if ev, ok := progressEvent(j, &o, now); ok {
			b.events, b.progress = append(b.events, ev), b.progress+1
		}
	}
	return listing{at: asked, keys: keys}, ids, unknown
}

// discover appends a listed job the log does not know, once it is older
// than a cycle: until then its audit entry may be on its way. A job whose
// creation time cannot be true (see events.ImplausibleTime) has no age to
// wait for, and is discovered at once, as observed now (see eventTime).
func (e *Enricher) discover(o *observed, now time.Time, b *batch) {
	c := o.created()
	young := events.ImplausibleTime(c, now) == "" && now.Sub(c) < e.cfg.Interval
	if c.IsZero() || young || e.deps.Jobs.Known(o.key) || e.wasActed(o.key) {
		return
	}
	b.events = append(b.events, discoveredEvents(o, now)...)
	b.acted = append(b.acted, o.key)
	b.discovered++
}

// unlisted handles the open jobs listing l lacked; before is the
// project's previous listing. A script's statement is not listed while
// its script is. A job that ended since the previous listing gets a cycle
// (at least half an interval) for its completion entry to arrive. Then,
// and at once for a job that may have ended earlier, one jobs.get each
// cycle until it is closed or its completion arrives. It returns how many
// jobs due a jobs.get it did not ask about before ctx ended.
func (e *Enricher) unlisted(ctx context.Context, t task, l, before listing, ids map[string]bool, now time.Time, b *batch) int {
	e.mu.Lock()
	prev := e.missing[t.project]
	e.mu.Unlock()
	next, due := e.absences(t, l, ids, prev, before, now)
	left := e.checkDue(ctx, due, next, now, b)
	e.mu.Lock()
	e.missing[t.project] = next
	e.mu.Unlock()
	return left
}

// absences returns the absence of every open job l lacked, and the jobs
// due a check, in the order of absence.order.
func (e *Enricher) absences(t task, l listing, ids map[string]bool, prev map[events.JobKey]*absence, before listing, now time.Time) (map[events.JobKey]*absence, []*events.Job) {
	next := map[events.JobKey]*absence{}
	var due []*events.Job
	for i := range t.open {
		j := &t.open[i]
		if l.keys[j.Key] || (j.ParentJobID != "" && ids[j.ParentJobID]) {
			continue
		}
		a := prev[j.Key]
		switch {
		case a == nil && before.endedSince(j), a != nil && now.Sub(a.since) < e.cfg.Interval/2:
			next[j.Key] = cmp.Or(a, &absence{since: now})
			continue
		case a == nil:
			a = &absence{since: now}
		}
		next[j.Key] = a
		due = append(due, j)
	}
	slices.SortStableFunc(due, func(x, y *events.Job) int { return next[x.Key].order(next[y.Key]) })
	return next, due
}

// checkDue checks the due jobs in turn until ctx ends, forgets those it
// need not ask about again, and returns how many it did not ask about.
func (e *Enricher) checkDue(ctx context.Context, due []*events.Job, next map[events.JobKey]*absence, now time.Time, b *batch) int {
	for i, j := range due {
		if ctx.Err() != nil {
			return len(due) - i
		}
		if !e.check(ctx, j, next[j.Key], now, b) {
			delete(next, j.Key)
		}
	}
	return 0
}

// check asks the API about an open job a listing lacked twice, and
// reports whether to keep asking. A job that left the log's open jobs
// meanwhile, or that this replica closed already, is dropped. One whose
// reconciliation is decided is kept until its event reaches the log, so
// that a failed append is retried without asking again.
func (e *Enricher) check(ctx context.Context, j *events.Job, a *absence, now time.Time, b *batch) bool {
	if !e.deps.Jobs.Listed(j.Key) || e.wasActed(j.Key) {
		return false
	}
	if c := a.closing; c != nil {
		b.reconcile(j.Key, c.ev, c.reason)
		return true
	}
	got, err := e.deps.API.Get(ctx, j.Key)
	if err != nil && ctx.Err() != nil {
		return true // cut off: asked about first at the next poll
	}
	a.asked = now
	e.diag.observe(ctx, j.Key.Project, jobsapi.MethodGet, err)
	e.noteOutcome(ctx, j.Key.Project, jobsapi.MethodGet, err)
	switch {
	case errors.Is(err, jobsapi.ErrNotFound):
		a.notFound++
		if a.notFound >= e.cfg.NotFoundLimit {
			a.closing = &closing{ev: notFoundEvent(j, now), reason: ReasonNotFound}
			b.reconcile(j.Key, a.closing.ev, ReasonNotFound)
		}
		return true
	case err != nil:
		return true
	}
	a.notFound = 0
	o, ok := fromJob(got)
	switch {
	case !ok || o.key != j.Key:
		e.deps.Logger.WarnContext(ctx, "jobs.get answered about another job", "job", j.Key.String())
		return true
	case o.state == events.StateDone:
		a.closing = &closing{ev: reconciledEvent(&o, now), reason: ReasonDone}
		if now.Sub(a.closing.ev.Time) >= e.cfg.Interval { // else its completion entry may be on its way
			b.reconcile(j.Key, a.closing.ev, ReasonDone)
		}
		return true
	}
	if ev, ok := progressEvent(j, &o, now); ok {
		b.events, b.progress = append(b.events, ev), b.progress+1
	}
	return false // running after all: the next listing will tell
}

// flush appends a poll's events, within the window's end or the reserve
// (see pollWindow.flush). What fails to append is observed again at the
// next poll: the jobs are still open, or still unknown, and the
// reconciliations decided are kept (absence.closing).
func (e *Enricher) flush(ctx context.Context, w pollWindow, project string, b *batch) {
	if len(b.events) == 0 {
		return
	}
	fctx, cancel := w.flush(ctx)
	defer cancel()
	if err := e.deps.Appender.Append(fctx, b.events); err != nil {
		e.m.appendFailures.Inc()
		if ctx.Err() == nil { // not stopping
			e.deps.Logger.WarnContext(ctx, "appending what enrichment observed", "project", project,
				"events", len(b.events), "error", err.Error())
		}
		return
	}
	e.markActed(b.acted)
	e.m.count(project, b)
}

// ended counts and logs a poll whose calls reached its deadline with left
// jobs not asked about, once for a project until one of its polls ends in
// time: a project with more jobs to ask about than a lease's hold allows
// is cut off at every poll, and closes its jobs a poll's worth at a time.
func (e *Enricher) ended(work context.Context, project string, left int) {
	cut := cutOff(work)
	e.mu.Lock()
	logged := e.cut[project]
	if cut {
		e.cut[project] = true
	} else {
		delete(e.cut, project)
	}
	e.mu.Unlock()
	if !cut {
		return
	}
	e.m.cutOff.Inc()
	if !logged {
		e.deps.Logger.WarnContext(work, "a poll reached its deadline before it asked the jobs API about every job; what it decided is appended, "+
			"and the jobs left are asked about first at the next poll; further cut-offs of the project are counted, not logged, until a poll ends in time",
			"project", project, "not_asked", left)
	}
}

// failedCall is what the log of failed calls is kept once for: a method
// in a project.
type failedCall struct{ project, method string }

// noteOutcome logs a call that failed (see failed), or notes that the
// method answered in the project (a 404 is an answer).
func (e *Enricher) noteOutcome(ctx context.Context, project, method string, err error) {
	if err == nil || errors.Is(err, jobsapi.ErrNotFound) {
		e.mu.Lock()
		delete(e.failing, failedCall{project, method})
		e.mu.Unlock()
		return
	}
	e.failed(ctx, failedCall{project, method}, err)
}

// failed logs a call that failed for other reasons than a missing
// permission (diagnostics record those): once for a method in a project
// until that method answers there again, so that an outage of the API
// logs one line a project and method, not one a cycle, and a jobs.get
// that fails at every cycle is not logged again because the listings
// between work.
func (e *Enricher) failed(ctx context.Context, c failedCall, err error) {
	var denied *jobsapi.DeniedError
	if errors.As(err, &denied) || ctx.Err() != nil {
		return
	}
	e.mu.Lock()
	logged := e.failing[c]
	e.failing[c] = true
	e.mu.Unlock()
	if !logged {
		e.deps.Logger.WarnContext(ctx, "calling the BigQuery jobs API; further failures of this method in the project are counted, not logged, until it answers",
			"project", c.project, "method", c.method, "error", err.Error())
	}
}
