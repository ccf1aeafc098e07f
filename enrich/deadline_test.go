package enrich_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bqobserver/bqobserver/enrich"
	"github.com/bqobserver/bqobserver/enrich/jobsapi"
	"github.com/bqobserver/bqobserver/events"
)

// hold gives every project a lease whose hold ends window from now on the
// world's clock, as a lease.Leases renewed a moment ago does.
type hold struct {
	now    func() time.Time
	window time.Duration
}

func (h hold) Until(string) (time.Time, bool) { return h.now().Add(h.window), true }

// slowGets delays every jobs.get by delay, as a distant API does.
type slowGets struct {
	delay time.Duration
	next  http.RoundTripper
}

func (s slowGets) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/jobs") {
		select {
		case <-time.After(s.delay):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return s.next.RoundTrip(r)
}

// ghostJobs appends the insertions of n jobs the API never ran, in
// project.
func ghostJobs(t *testing.T, w *world, project string, n int) []events.JobKey {
	t.Helper()
	loc := w.proj.OpenJobs(func(p string) bool { return p == project })[project][0].Key.Location
	now := w.org.Now()
	var keys []events.JobKey
	var evs []events.Event
	for i := range n {
		k := events.JobKey{Project: project, Location: loc, JobID: fmt.Sprintf("job_ghost_%03d", i)}
		keys = append(keys, k)
		evs = append(evs, events.Event{ID: events.DerivedEventID("ghost", k.String()), Kind: events.KindInserted, Job: k, Time: now,
			State: events.StateRunning, Facts: events.Facts{CreateTime: now, StartTime: now}, Source: events.Source{Format: "v2"}})
	}
	if err := w.feed.write(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestPollCutOffByItsDeadline: a project with more lost completions than
// one poll can ask about within its lease's hold (10 ms a jobs.get, 300 ms
// of hold, 60 jobs). Each poll stops asking a margin before its deadline
// and appends what it decided; the next asks about the others first. So
// every cycle closes more of them, and the cut-off polls are counted.
func TestPollCutOffByItsDeadline(t *testing.T) {
	w := newWorld(t, busyOrg(17))
	warm(w, w.enricher(enrich.Config{Interval: interval}, enrich.Deps{}), 4)
	project := slices.Sorted(mapKeys(w.proj.OpenJobs(func(string) bool { return true })))[0]
	ghosts := ghostJobs(t, w, project, 60)
	reg := prometheus.NewRegistry()
	e := w.enricher(enrich.Config{Interval: interval, NotFoundLimit: 1}, enrich.Deps{Registerer: reg,
		Leases: hold{now: w.org.Now, window: 300 * time.Millisecond},
		API:    w.client(jobsapi.Config{}, slowGets{delay: 10 * time.Millisecond, next: http.DefaultTransport})})
	listed := func() int {
		return len(slices.DeleteFunc(slices.Clone(ghosts), func(k events.JobKey) bool { return !w.proj.Listed(k) }))
	}
	warm(w, e, 1) // its first listing of the project, which gives the jobs it lacks a cycle
	left := []int{listed()}
	for len(left) < 8 && left[len(left)-1] > 0 {
		warm(w, e, 1)
		if n := listed(); n < left[len(left)-1] {
			left = append(left, n)
		} else {
			t.Fatalf("a cycle closed none of the %d lost completions left (left after each cycle: %v)", n, left)
		}
	}
	if n := left[len(left)-1]; n > 0 {
		t.Errorf("%d of %d lost completions still listed after %d cycles: %v", n, len(ghosts), len(left)-1, left)
	}
	t.Logf("lost completions left after each cycle: %v", left)
	if left[1] == 0 {
		t.Errorf("one poll closed all %d jobs: the test needs more than fit in a hold", len(ghosts))
	}
	if n := testutil.ToFloat64(sumOf(t, reg, "bqobserver_enrich_polls_cut_off_total")); n == 0 {
		t.Error("no poll was counted as cut off by its deadline")
	}
}

// attempts records every append enrichment attempts, and fails them while
// failing is set.
type attempts struct {
	next    *feed
	mu      sync.Mutex
	failing bool
	made    []events.Event
}

func (a *attempts) Append(ctx context.Context, evs []events.Event) error {
	a.mu.Lock()
	a.made = append(a.made, evs...)
	failing := a.failing
	a.mu.Unlock()
	if failing {
		return errAppend
	}
	return a.next.Append(ctx, evs)
}

// TestNotFoundReconciliationIdempotent: a replica decides that a job the
// API does not know is closed, and dies before its append is durable; the
// replica that takes over decides the same at its second cycle (its first
// listing gives the jobs it lacks a cycle). Both write one event: same
// id, same time.
func TestNotFoundReconciliationIdempotent(t *testing.T) {
	w := newWorld(t, busyOrg(17))
	warm(w, w.enricher(enrich.Config{Interval: interval}, enrich.Deps{}), 4)
	project := slices.Sorted(mapKeys(w.proj.OpenJobs(func(string) bool { return true })))[0]
	ghost := ghostJob(t, w, project)
	app := &attempts{next: w.feed, failing: true}
	warm(w, w.enricher(enrich.Config{Interval: interval, NotFoundLimit: 1}, enrich.Deps{Appender: app}), 2)
	app.mu.Lock()
	app.failing = false
	app.mu.Unlock()
	warm(w, w.enricher(enrich.Config{Interval: interval, NotFoundLimit: 1}, enrich.Deps{Appender: app}), 2)
	if w.proj.Listed(ghost) {
		t.Fatal("the ghost is still listed after the second replica's cycle")
	}
	type identity struct {
		ID   string
		Time time.Time
	}
	var got []identity
	for _, ev := range enrichedOfKind(app.made, events.KindReconciled) {
		if ev.Job == ghost {
			got = append(got, identity{ev.ID, ev.Time})
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d reconciliations of the ghost attempted, want 2 (one per replica): %v", len(got), got)
	}
	if diff := gocmp.Diff(got[0], got[1]); diff != "" {
		t.Errorf("the two replicas' reconciliations differ (-first +second):\n%s", diff)
	}
}
