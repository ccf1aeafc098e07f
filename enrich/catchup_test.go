package enrich_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/bqobserver/bqobserver/enrich"
	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/auditlog"
	"github.com/bqobserver/bqobserver/internal/simulation"
	"github.com/bqobserver/bqobserver/projections/running"
)

// behindSource is the world's projection, catching up while catching is
// set, as its lag (running.Config.Behind) says after a restart.
type behindSource struct {
	*running.Projection
	catching atomic.Bool
}

func (s *behindSource) CatchingUp() bool { return s.catching.Load() }

// backlog keeps the insertion and completion entries the world delivers
// from the list until released, as a backlog of the live feed does.
type backlog struct {
	w       *world
	entries []simulation.Entry
	// held are the kinds of entries held back of each job.
	held map[events.JobKey]map[events.Kind]bool
}

func holdBack(w *world) *backlog {
	b := &backlog{w: w, held: map[events.JobKey]map[events.Kind]bool{}}
	w.drop = func(e *simulation.Entry) bool {
		k := events.Kind(e.Kind())
		if k != events.KindInserted && k != events.KindCompleted {
			return false
		}
		b.entries = append(b.entries, *e)
		for _, m := range e.Meant {
			if b.held[m.Job] == nil {
				b.held[m.Job] = map[events.Kind]bool{}
			}
			b.held[m.Job][k] = true
		}
		return true
	}
	return b
}

// queued reports whether ev closes a job whose completion was held back,
// or discovers one whose insertion was: both were on their way.
func (b *backlog) queued(ev events.Event) bool {
	return (ev.Kind == events.KindReconciled && b.held[ev.Job][events.KindCompleted]) ||
		(ev.Kind == events.KindInserted && b.held[ev.Job][events.KindInserted])
}

// release applies the entries held back, and holds back no more.
func (b *backlog) release() {
	b.w.t.Helper()
	b.w.drop = nil
	var evs []events.Event
	for _, e := range b.entries {
		got, err := auditlog.Decode(e.Data)
		var skip *auditlog.SkipError
		if err != nil && !errors.As(err, &skip) {
			b.w.t.Fatalf("decoding a simulated entry: %v", err)
		}
		evs = append(evs, got...)
	}
	if err := b.w.feed.write(b.w.t.Context(), evs); err != nil {
		b.w.t.Fatal(err)
	}
}

// closedOrFound returns the reconciled and discovered events enrichment
// appended since the first before of them, that keep accepts.
func closedOrFound(w *world, before int, keep func(events.Event) bool) []string {
	var out []string
	for _, ev := range w.feed.appendedByEnrichment()[before:] {
		if (ev.Kind == events.KindReconciled || ev.Kind == events.KindInserted) && keep(ev) {
			out = append(out, string(ev.Kind)+" "+ev.Job.String())
		}
	}
	return out
}

// TestCatchingUpProgressOnly: while the job source catches up, its
// completion and insertion entries queued, polls append progress but
// reconcile and discover nothing; once the backlog is applied, none of its
// jobs is reconciled or discovered.
func TestCatchingUpProgressOnly(t *testing.T) {
	w := newWorld(t, busyOrg(35))
	src := &behindSource{Projection: w.proj}
	e := w.enricher(enrich.Config{Interval: interval}, enrich.Deps{Jobs: src})
	warm(w, e, 4)
	before := len(w.feed.appendedByEnrichment())
	src.catching.Store(true)
	held := holdBack(w)
	warm(w, e, 4)
	if got := closedOrFound(w, before, func(events.Event) bool { return true }); len(got) > 0 {
		t.Errorf("polls while the list catches up reconciled or discovered %d jobs: %v…", len(got), got[:min(len(got), 5)])
	}
	if n := len(enrichedOfKind(w.feed.appendedByEnrichment()[before:], events.KindProgress)); n == 0 {
		t.Error("no progress appended while the list catches up")
	}
	if len(held.entries) < 10 {
		t.Fatalf("%d entries held back: the test needs more", len(held.entries))
	}
	held.release()
	src.catching.Store(false)
	warm(w, e, 2)
	if got := closedOrFound(w, before, held.queued); len(got) > 0 {
		t.Errorf("%d jobs whose entries were queued were reconciled or discovered: %v…", len(got), got[:min(len(got), 5)])
	}
}

// TestFirstListingGivesACycle: a replica starts while the entries of the
// last 15 s are queued, before the source can tell it is behind; its
// first poll of each project reconciles and discovers nothing, and once
// the entries are applied none of their jobs is reconciled or discovered.
func TestFirstListingGivesACycle(t *testing.T) {
	w := newWorld(t, busyOrg(35))
	warm(w, w.enricher(enrich.Config{Interval: interval}, enrich.Deps{}), 4)
	before := len(w.feed.appendedByEnrichment())
	held := holdBack(w)
	for range 3 {
		w.step(interval)
	}
	e := w.enricher(enrich.Config{Interval: interval}, enrich.Deps{})
	e.Cycle(t.Context())
	if len(held.entries) < 10 {
		t.Fatalf("%d entries held back: the test needs more", len(held.entries))
	}
	held.release()
	warm(w, e, 2)
	if got := closedOrFound(w, before, held.queued); len(got) > 0 {
		t.Errorf("%d jobs whose entries were queued at the start were reconciled or discovered: %v…", len(got), got[:min(len(got), 5)])
	}
}
