package enrich_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bqobserver/bqobserver/enrich"
	"github.com/bqobserver/bqobserver/enrich/jobsapi"
	"github.com/bqobserver/bqobserver/enrich/registry"
	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/simulation"
	"github.com/bqobserver/bqobserver/projections/running"
)

const interval = 5 * time.Second

// busyOrg is an organization with long jobs: many run at once.
func busyOrg(seed uint64) simulation.Config {
	d := simulation.DefaultDelivery()
	d.DelayShare = 0
	return simulation.Config{Seed: seed, Projects: 12, Rate: 4, DurationScale: 10, Delivery: &d}
}

// warm runs the world for a while with cycles, so that jobs run.
func warm(w *world, e *enrich.Enricher, cycles int) {
	for range cycles {
		w.step(interval)
		e.Cycle(w.t.Context())
	}
}

// calls counts the API's calls of a method, all projects together.
func calls(api *simulation.JobsAPI, method string) int {
	n := 0
	for c, k := range api.Calls() {
		if c.Method == method {
			n += k
		}
	}
	return n
}

func enrichedOfKind(evs []events.Event, k events.Kind) []events.Event {
	return slices.DeleteFunc(slices.Clone(evs), func(e events.Event) bool { return e.Kind != k })
}

// TestOneListPerActiveProject: a cycle lists each project with open jobs
// once, a second cycle at the same moment appends nothing (nothing
// changed), and the running jobs' numbers are the API's.
func TestOneListPerActiveProject(t *testing.T) {
	w := newWorld(t, busyOrg(3))
	e := w.enricher(enrich.Config{Interval: interval}, enrich.Deps{})
	warm(w, e, 12)
	w.step(interval)
	active := w.proj.OpenJobs(func(string) bool { return true })
	before, beforeEvents := calls(w.api, simulation.MethodList), len(w.feed.appendedByEnrichment())
	e.Cycle(t.Context())
	if got := calls(w.api, simulation.MethodList) - before; got != len(active) {
		t.Errorf("a cycle made %d jobs.list calls for %d active projects", got, len(active))
	}
	if len(w.feed.appendedByEnrichment()) == beforeEvents {
		t.Error("a cycle after five seconds appended nothing")
	}
	before, beforeEvents = calls(w.api, simulation.MethodList), len(w.feed.appendedByEnrichment())
	e.Cycle(t.Context())
	if got := len(w.feed.appendedByEnrichment()) - beforeEvents; got != 0 {
		t.Errorf("a second cycle at the same moment appended %d events", got)
	}
	// The list shows each running query's numbers as the API reports them.
	client := w.client(jobsapi.Config{}, nil)
	checked := 0
	for p, jobs := range w.proj.OpenJobs(func(string) bool { return true }) {
		listed, err := client.ListOpen(t.Context(), p, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range listed {
			st := l.Statistics
			if l.Status.State != "RUNNING" || st.TotalSlotMs == 0 {
				continue
			}
			k := events.JobKey{Project: p, Location: l.JobReference.Location, JobID: l.JobReference.JobId}
			i := slices.IndexFunc(jobs, func(j events.Job) bool { return j.Key == k })
			if i < 0 {
				continue
			}
			checked++
			got := [2]int64{deref(jobs[i].SlotMs), deref(jobs[i].BytesProcessed)}
			if want := [2]int64{st.TotalSlotMs, known(st.TotalBytesProcessed)}; got != want {
				t.Errorf("job %s shows slot-ms and bytes %v, the API %v", k, got, want)
			}
		}
	}
	if checked < 5 {
		t.Errorf("only %d running jobs with slot time to compare", checked)
	}
}

// known is what the list shows of a number the API reports: 0 is not known.
func known(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

func deref(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}

// TestEventIdentity: the events of two enrichers that observe the same
// world at the same moments are the same events, ids included.
func TestEventIdentity(t *testing.T) {
	run := func() []events.Event {
		w := newWorld(t, busyOrg(5))
		e := w.enricher(enrich.Config{Interval: interval}, enrich.Deps{})
		warm(w, e, 10)
		evs := w.feed.appendedByEnrichment()
		slices.SortFunc(evs, func(a, b events.Event) int { return strings.Compare(a.ID, b.ID) })
		return evs
	}
	a, b := run(), run()
	if len(a) == 0 {
		t.Fatal("no events")
	}
	if diff := gocmp.Diff(a, b); diff != "" {
		t.Errorf("two observers of the same world (-first +second):\n%s", diff)
	}
}

// TestRateLimitsSlowButLoseNothing: with a third of the calls refused
// (429, or 403 rateLimitExceeded), the same events are appended as
// without, each once, after more calls.
func TestRateLimitsSlowButLoseNothing(t *testing.T) {
	run := func(f simulation.Faults) ([]events.Event, int) {
		w := newWorld(t, busyOrg(9))
		if err := w.api.SetFaults(f); err != nil {
			t.Fatal(err)
		}
		e := w.enricher(enrich.Config{Interval: interval}, enrich.Deps{API: w.client(jobsapi.Config{Attempts: 30}, nil)})
		warm(w, e, 12)
		evs := w.feed.appendedByEnrichment()
		slices.SortFunc(evs, func(a, b events.Event) int { return strings.Compare(a.ID, b.ID) })
		return evs, calls(w.api, simulation.MethodList) + calls(w.api, simulation.MethodGet)
	}
	want, base := run(simulation.Faults{})
	for _, status := range []int{http.StatusTooManyRequests, http.StatusForbidden} {
		got, n := run(simulation.Faults{RateLimitShare: 0.3, RateLimitStatus: status})
		if diff := gocmp.Diff(got, want); diff != "" {
			t.Errorf("rate limited with %d (-got +want):\n%s", status, diff)
		}
		if n <= base {
			t.Errorf("rate limited with %d: %d calls, no more than the %d without", status, n, base)
		}
	}
	ids := map[string]bool{}
	for _, ev := range want {
		if ids[ev.ID] {
			t.Errorf("event %s appended twice", ev.ID)
		}
		ids[ev.ID] = true
	}
}

// TestDeniedProject: a project that denies jobs.list shows in diagnostics
// with the permission and the grant, the others are still enriched, and
// the denial goes once the permission is back. A project that denies
// jobs.get cannot have its lost job closed until it allows it.
func TestDeniedProject(t *testing.T) {
	w := newWorld(t, busyOrg(13))
	e := w.enricher(enrich.Config{Interval: interval}, enrich.Deps{})
	warm(w, e, 6)
	projects := slices.Sorted(mapKeys(w.proj.OpenJobs(func(string) bool { return true })))
	if len(projects) < 3 {
		t.Fatalf("only %d active projects", len(projects))
	}
	listDenied, getDenied := projects[0], projects[1]
	w.api.DenyMethod(listDenied, simulation.MethodList, true)
	w.api.DenyMethod(getDenied, simulation.MethodGet, true)
	ghost := ghostJob(t, w, getDenied)
	progress := len(enrichedOfKind(w.feed.appendedByEnrichment(), events.KindProgress))
	warm(w, e, 4)
	if got := len(enrichedOfKind(w.feed.appendedByEnrichment(), events.KindProgress)); got == progress {
		t.Error("no progress for the other projects while one is denied")
	}
	d, err := e.Diagnostics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := problemsOf(d)
	want := []problem{
		{listDenied, "jobs.list", "bigquery.jobs.listAll", "roles/bigquery.resourceViewer", true},
		{getDenied, "jobs.get", "bigquery.jobs.get", "roles/bigquery.resourceViewer", true},
	}
	slices.SortFunc(want, func(a, b problem) int { return strings.Compare(a.Project, b.Project) })
	if diff := gocmp.Diff(got, want); diff != "" {
		t.Errorf("diagnostics (-got +want):\n%s", diff)
	}
	if !w.proj.Listed(ghost) {
		t.Error("the job of the project that denies jobs.get was closed")
	}
	w.api.DenyMethod(listDenied, simulation.MethodList, false)
	w.api.DenyMethod(getDenied, simulation.MethodGet, false)
	warm(w, e, 4)
	if d, err = e.Diagnostics(t.Context()); err != nil || len(d.Problems) != 0 {
		t.Errorf("diagnostics after the grants: %+v, %v", d, err)
	}
	if w.proj.Listed(ghost) {
		t.Error("the job the API does not know is still listed once jobs.get is allowed")
	}
}

type problem struct {
	Project, Method, Permission, Role string
	FixNamesProject                   bool
}

func problemsOf(d *running.Diagnostics) []problem {
	var out []problem
	for _, p := range d.Problems {
		out = append(out, problem{p.Project, p.Method, p.Permission, p.Role, strings.Contains(p.Fix, p.Project) && strings.Contains(p.Fix, p.Role)})
	}
	return out
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// ghostJob appends the insertion of a job the API never ran, in project.
func ghostJob(t *testing.T, w *world, project string) events.JobKey {
	t.Helper()
	loc := w.proj.OpenJobs(func(p string) bool { return p == project })[project][0].Key.Location
	k := events.JobKey{Project: project, Location: loc, JobID: "job_ghost_" + project}
	now := w.org.Now()
	ev := events.Event{ID: events.DerivedEventID("ghost", k.String()), Kind: events.KindInserted, Job: k, Time: now,
		State: events.StateRunning, Facts: events.Facts{CreateTime: now, StartTime: now}, Source: events.Source{Format: "v2"}}
	if err := w.feed.write(t.Context(), []events.Event{ev}); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestNotFoundClosesAfterLimit: a job no listing ever had, that the API
// answers 404 for, is closed with the reason after NotFoundLimit answers,
// one a cycle.
func TestNotFoundClosesAfterLimit(t *testing.T) {
	w := newWorld(t, busyOrg(17))
	e := w.enricher(enrich.Config{Interval: interval, NotFoundLimit: 3}, enrich.Deps{})
	warm(w, e, 4)
	project := slices.Sorted(mapKeys(w.proj.OpenJobs(func(string) bool { return true })))[0]
	ghost := ghostJob(t, w, project)
	gets := func() int { return w.api.Calls()[simulation.Call{Method: simulation.MethodGet, Project: project}] }
	before := gets()
	var listedAfter []bool
	for range 5 {
		warm(w, e, 1)
		listedAfter = append(listedAfter, w.proj.Listed(ghost))
	}
	if diff := gocmp.Diff(listedAfter, []bool{true, true, false, false, false}); diff != "" {
		t.Errorf("listed after each cycle (-got +want):\n%s", diff)
	}
	if n := gets() - before; n < 3 {
		t.Errorf("%d jobs.get calls in the project, want at least the 3 for the ghost", n)
	}
	evs := enrichedOfKind(w.feed.appendedByEnrichment(), events.KindReconciled)
	i := slices.IndexFunc(evs, func(ev events.Event) bool { return ev.Job == ghost })
	if i < 0 {
		t.Fatal("no reconciled event for the ghost")
	}
	if ev := evs[i]; ev.State != events.StateDone || ev.Error != nil || ev.ReconciledReason != enrich.ReasonNotFound {
		t.Errorf("the ghost was closed by %+v", ev)
	}
}

// TestAppendFailureRetried: a reconciliation whose append fails is made
// again at the next cycle.
func TestAppendFailureRetried(t *testing.T) {
	w := newWorld(t, busyOrg(17))
	e := w.enricher(enrich.Config{Interval: interval, NotFoundLimit: 1}, enrich.Deps{})
	warm(w, e, 4)
	project := slices.Sorted(mapKeys(w.proj.OpenJobs(func(string) bool { return true })))[0]
	ghost := ghostJob(t, w, project)
	w.feed.mu.Lock()
	w.feed.fail = 1000 // every append of the next cycle fails
	w.feed.mu.Unlock()
	warm(w, e, 1)
	if !w.proj.Listed(ghost) {
		t.Fatal("the ghost left though its append failed")
	}
	w.feed.mu.Lock()
	w.feed.fail = 0
	w.feed.mu.Unlock()
	warm(w, e, 1)
	if w.proj.Listed(ghost) {
		t.Error("the ghost is still listed a cycle after appends work again")
	}
}

// failingGets answers every jobs.get about one project with a 500.
type failingGets struct {
	project string
	next    http.RoundTripper
}

func (f failingGets) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/projects/"+f.project+"/jobs/") {
		return &http.Response{StatusCode: http.StatusInternalServerError, Header: http.Header{}, Request: r,
			Body: io.NopCloser(strings.NewReader(`{"error":{"code":500,"message":"backend error"}}`))}, nil
	}
	return f.next.RoundTrip(r)
}

// TestPersistentGetFailureLoggedOnce: a jobs.get that fails at every
// cycle, in a project whose listings work, is logged once.
func TestPersistentGetFailureLoggedOnce(t *testing.T) {
	w := newWorld(t, busyOrg(17))
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	warm(w, w.enricher(enrich.Config{Interval: interval}, enrich.Deps{}), 4)
	project := slices.Sorted(mapKeys(w.proj.OpenJobs(func(string) bool { return true })))[0]
	e := w.enricher(enrich.Config{Interval: interval}, enrich.Deps{Logger: logger,
		API: w.client(jobsapi.Config{Attempts: 2}, failingGets{project: project, next: http.DefaultTransport})})
	ghostJob(t, w, project)
	warm(w, e, 6)
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), `"method":"jobs.get"`); n != 1 {
		t.Errorf("a jobs.get failing at every cycle was logged %d times in 6 cycles, want 1:\n%s", n, logs.String())
	}
}

// writerFunc is an io.Writer made of a function.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestDiscovery drops the insertion entries of one job in five, as a sink
// would that lost them: every job the API lists, created more than two
// cycles ago, is listed anyway, and the discovered jobs are counted.
func TestDiscovery(t *testing.T) {
	w := newWorld(t, busyOrg(21))
	w.drop = func(e *simulation.Entry) bool {
		return e.Kind() == string(events.KindInserted) && len(e.Meant) > 0 && e.Meant[0].Job.JobID[len(e.Meant[0].Job.JobID)-1]%5 == 0
	}
	reg := prometheus.NewRegistry()
	e := w.enricher(enrich.Config{Interval: interval}, enrich.Deps{Registerer: reg})
	warm(w, e, 20)
	missing := w.unlistedRunning(2 * interval)
	if len(missing) > 0 {
		t.Errorf("running jobs the API lists, not in the list:\n%v", missing)
	}
	n := len(enrichedOfKind(w.feed.appendedByEnrichment(), events.KindInserted))
	if n < 5 {
		t.Errorf("%d jobs discovered", n)
	}
	if got := int(testutil.ToFloat64(sumOf(t, reg, "bqobserver_enrich_discovered_jobs_total"))); got != n {
		t.Errorf("the metric counts %d discovered jobs, the log has %d", got, n)
	}
}

// unlistedRunning returns the top-level jobs the API lists as pending or
// running, created more than age ago, that the list lacks.
func (w *world) unlistedRunning(age time.Duration) []string {
	w.t.Helper()
	client := w.client(jobsapi.Config{}, nil)
	now := w.org.Now()
	var out []string
	for _, p := range w.org.Projects() {
		jobs, err := client.ListOpen(w.t.Context(), p, time.Time{})
		if err != nil {
			w.t.Fatal(err)
		}
		for _, j := range jobs {
			k := events.JobKey{Project: p, Location: j.JobReference.Location, JobID: j.JobReference.JobId}
			if now.Sub(time.UnixMilli(j.Statistics.CreationTime)) > age && !w.proj.Listed(k) {
				out = append(out, k.String())
			}
		}
	}
	return out
}

// sumOf returns a collector of the sum of a metric's series.
func sumOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "sum"})
	c.Add(sum)
	return c
}

// TestSweepFindsSilentProject: a project whose audit entries never reach
// the log (a sink that filters it out) has no open job there, so no cycle
// polls it; but it had jobs in the last 30 days, so the sweep lists it and
// its running jobs are discovered.
func TestSweepFindsSilentProject(t *testing.T) {
	w := newWorld(t, busyOrg(23))
	silent := w.org.Projects()[0]
	w.drop = func(e *simulation.Entry) bool { return strings.Contains(string(e.Data), `"projects/`+silent+`/logs/`) }
	reg, err := registry.New(w.bt.Client, w.bt.Table)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Touch(t.Context(), []string{silent}, w.org.Now().Add(-20*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	e := w.enricher(enrich.Config{Interval: interval, SweepInterval: 30 * time.Second}, enrich.Deps{Registry: reg})
	warm(w, e, 24)
	if missing := w.unlistedRunning(30*time.Second + 2*interval); len(missing) > 0 {
		t.Errorf("running jobs the API lists, not in the list:\n%v", missing)
	}
	found := 0
	for _, ev := range enrichedOfKind(w.feed.appendedByEnrichment(), events.KindInserted) {
		if ev.Job.Project == silent {
			found++
		}
	}
	if found == 0 {
		t.Errorf("no job of the silent project %s was discovered", silent)
	}
}

// TestLive: a job's live detail is the API's plan and timeline, reused
// for its TTL.
func TestLive(t *testing.T) {
	w := newWorld(t, busyOrg(25))
	e := w.enricher(enrich.Config{Interval: interval, LiveTTL: 5 * time.Second}, enrich.Deps{})
	warm(w, e, 12)
	var key events.JobKey
	for _, jobs := range w.proj.OpenJobs(func(string) bool { return true }) {
		for _, j := range jobs {
			if j.State == events.StateRunning && j.JobType == events.JobTypeQuery && j.StatementType != "SCRIPT" && j.SlotMs != nil {
				key = j.Key
			}
		}
	}
	if key == (events.JobKey{}) {
		t.Fatal("no running query")
	}
	gets := func() int { return calls(w.api, simulation.MethodGet) }
	before := gets()
	l, err := e.Live(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := w.client(jobsapi.Config{}, nil).Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Stages) == 0 || len(l.Stages) != len(raw.Statistics.Query.QueryPlan) || l.State != "RUNNING" {
		t.Fatalf("live detail has %d stages in state %s; the API %d", len(l.Stages), l.State, len(raw.Statistics.Query.QueryPlan))
	}
	for i, s := range raw.Statistics.Query.QueryPlan {
		got := l.Stages[i]
		if got.Name != s.Name || got.Status != s.Status || got.RecordsRead == nil || *got.RecordsRead != s.RecordsRead || got.SlotMs == nil || *got.SlotMs != s.SlotMs ||
			got.ComputeRatioAvg != s.ComputeRatioAvg || got.StartTime.UnixMilli() != s.StartMs {
			t.Errorf("stage %d: %+v, the API %+v", i, got, s)
		}
	}
	if _, err := e.Live(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	if n := gets() - before - 1; n != 1 { // one by Live, one by the test
		t.Errorf("%d calls for two reads within the TTL, want 1", n)
	}
	w.step(6 * time.Second)
	if _, err := e.Live(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	if n := gets() - before - 1; n != 2 {
		t.Errorf("%d calls after the TTL, want 2", n)
	}
}

// TestLiveDetailsDoNotStarvePolls: job details opened in a burst (each
// request gives up after 3 s, here 50 ms) take no more of the shared rate
// limit than it has to spare, so a poll whose lease leaves it 2 s is not
// refused behind them.
func TestLiveDetailsDoNotStarvePolls(t *testing.T) {
	w := newWorld(t, busyOrg(25))
	client := w.client(jobsapi.Config{QPS: 5}, nil)
	e := w.enricher(enrich.Config{Interval: interval}, enrich.Deps{API: client})
	w.step(4 * interval)
	project := w.org.Projects()[0]
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			_, _ = e.Live(ctx, events.JobKey{Project: project, Location: "US", JobID: fmt.Sprintf("job_opened_%02d", i)})
		})
	}
	wg.Wait()                                                      // every detail request has been answered or has given up
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second) // a poll's window
	defer cancel()
	if _, err := client.ListOpen(ctx, project, time.Time{}); err != nil {
		t.Errorf("a poll after a burst of 50 abandoned detail requests failed: %v", err)
	}
}

// heldGets holds every call until open is closed or the call's context
// ends, and counts the calls and those whose context ended.
type heldGets struct {
	open         chan struct{}
	calls, ended atomic.Int64
	next         http.RoundTripper
}

func (h *heldGets) RoundTrip(r *http.Request) (*http.Response, error) {
	h.calls.Add(1)
	select {
	case <-h.open:
		return h.next.RoundTrip(r)
	case <-r.Context().Done():
		h.ended.Add(1)
		return nil, r.Context().Err()
	}
}

// TestLiveCallEndsWithItsLastWaiter: a job's live detail is one call
// shared by the requests waiting for it; one that leaves does not end it
// for the others, and when the last one leaves the call ends, instead of
// going on (and retrying) for nobody.
func TestLiveCallEndsWithItsLastWaiter(t *testing.T) {
	w := newWorld(t, busyOrg(25))
	h := &heldGets{open: make(chan struct{}), next: http.DefaultTransport}
	e := w.enricher(enrich.Config{Interval: interval}, enrich.Deps{API: w.client(jobsapi.Config{}, h)})
	w.step(4 * interval)
	var keys []events.JobKey
	for _, jobs := range w.proj.OpenJobs(func(string) bool { return true }) {
		for _, j := range jobs {
			keys = append(keys, j.Key)
		}
	}
	if len(keys) < 2 {
		t.Fatalf("%d open jobs, the test needs 2", len(keys))
	}
	patient := make(chan error, 1)
	go func() {
		_, err := e.Live(t.Context(), keys[0])
		patient <- err
	}()
	for h.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := e.Live(short, keys[0]); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a request that gave up waiting: %v, want its deadline", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := h.ended.Load(); n != 0 {
		t.Fatalf("the shared call ended when one of its two waiters left (%d ended)", n)
	}
	close(h.open)
	if err := <-patient; err != nil {
		t.Fatalf("the request that waited: %v", err)
	}
	if n := h.calls.Load(); n != 1 {
		t.Errorf("%d calls for two requests together, want 1", n)
	}

	h = &heldGets{open: make(chan struct{}), next: http.DefaultTransport}
	e = w.enricher(enrich.Config{Interval: interval}, enrich.Deps{API: w.client(jobsapi.Config{}, h)})
	short, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := e.Live(short, keys[1]); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a request that gave up waiting: %v, want its deadline", err)
	}
	for deadline := time.Now().Add(2 * time.Second); h.ended.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the call went on 2 s after its only waiter left")
		}
	}
}

// gate holds the calls about one project until it is opened.
type gate struct {
	project string
	open    chan struct{}
	held    atomic.Int64
	next    http.RoundTripper
	mu      sync.Mutex
	at      []time.Time // when each held call came
}

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/projects/"+g.project+"/") {
		g.held.Add(1)
		g.mu.Lock()
		g.at = append(g.at, time.Now())
		g.mu.Unlock()
		select {
		case <-g.open:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return g.next.RoundTrip(r)
}

// TestSlowProjectDoesNotStallOthers runs enrichment in real time while one
// project's calls hang: every other project is listed again and again
// meanwhile (a stalled poller would list none of them twice), and the
// hanging project is not called again until its poll ends.
func TestSlowProjectDoesNotStallOthers(t *testing.T) {
	w := newWorld(t, busyOrg(27))
	warmer := w.enricher(enrich.Config{Interval: interval}, enrich.Deps{})
	warm(w, warmer, 6)
	projects := slices.Sorted(mapKeys(w.proj.OpenJobs(func(string) bool { return true })))
	g := &gate{project: projects[0], open: make(chan struct{}), next: http.DefaultTransport}
	e := w.enricher(enrich.Config{Interval: 20 * time.Millisecond, Workers: 2},
		enrich.Deps{API: w.client(jobsapi.Config{}, g)})
	before := w.api.Calls()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = e.Run(ctx) })
	defer func() {
		close(g.open)
		cancel()
		wg.Wait()
	}()
	const times = 5
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		least := leastListed(w.api, before, projects[1:])
		if least >= times {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("while %s hung, some other project was listed only %d times in a minute", projects[0], least)
		}
	}
	// One call, or, on a machine slow enough that the test outlasts it,
	// the same call tried again once its attempt timed out (30 s): never a
	// new poll's call while the first still hangs.
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := 1; i < len(g.at); i++ {
		if gap := g.at[i].Sub(g.at[i-1]); gap < 29*time.Second {
			t.Errorf("the hanging project was called again %s after its last call, while that call hung", gap)
		}
	}
	if len(g.at) == 0 {
		t.Error("the hanging project was never called")
	}
}

// leastListed is the fewest jobs.list calls any of projects got since before.
func leastListed(api *simulation.JobsAPI, before map[simulation.Call]int, projects []string) int {
	now := api.Calls()
	least := -1
	for _, p := range projects {
		c := simulation.Call{Method: simulation.MethodList, Project: p}
		if n := now[c] - before[c]; least < 0 || n < least {
			least = n
		}
	}
	return least
}

// listings records the projects listed, in order, and delays the
// listings of the projects whose names start with slow.
type listings struct {
	next  http.RoundTripper
	slow  string
	delay time.Duration
	mu    sync.Mutex
	order []string
}

func (l *listings) RoundTrip(r *http.Request) (*http.Response, error) {
	if m := listPath.FindStringSubmatch(r.URL.Path); m != nil {
		l.mu.Lock()
		l.order = append(l.order, m[1])
		l.mu.Unlock()
		if l.slow != "" && strings.HasPrefix(m[1], l.slow) {
			time.Sleep(l.delay)
		}
	}
	return l.next.RoundTrip(r)
}

// listed returns the projects listed so far, in order.
func (l *listings) listed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.order)
}

// idleProjects records n projects without jobs as active a day ago, for
// the sweep, and returns the registry.
func idleProjects(t *testing.T, w *world, n int) *registry.Registry {
	t.Helper()
	reg, err := registry.New(w.bt.Client, w.bt.Table)
	if err != nil {
		t.Fatal(err)
	}
	var idle []string
	for i := range n {
		idle = append(idle, fmt.Sprintf("idle-%04d", i))
	}
	if err := reg.Touch(t.Context(), idle, w.org.Now().Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestOpenProjectsBeforeTheSweep: with one worker, a cycle whose sweep is
// due lists every project with open jobs before any of the sweep's.
func TestOpenProjectsBeforeTheSweep(t *testing.T) {
	w := newWorld(t, busyOrg(33))
	warm(w, w.enricher(enrich.Config{Interval: interval}, enrich.Deps{}), 4)
	reg := idleProjects(t, w, 200)
	l := &listings{next: http.DefaultTransport}
	e := w.enricher(enrich.Config{Interval: interval, Workers: 1}, enrich.Deps{Registry: reg, API: w.client(jobsapi.Config{}, l)})
	open := w.proj.OpenJobs(func(string) bool { return true })
	e.Cycle(t.Context())
	order := l.listed()
	firstSwept := slices.IndexFunc(order, func(p string) bool { return open[p] == nil })
	if firstSwept < 0 {
		t.Fatalf("the sweep listed nothing: %v", order)
	}
	if got := len(slices.DeleteFunc(order[firstSwept:], func(p string) bool { return open[p] == nil })); got > 0 {
		t.Errorf("%d of %d projects with open jobs were listed after the sweep's first project", got, len(open))
	}
}

// TestOpenProjectsPolledDuringALongSweep runs enrichment in real time with
// a sweep of 300 projects, each listed in 10 ms, on two workers: the
// projects with open jobs are polled at every tick while the sweep goes
// on, not once it is done.
func TestOpenProjectsPolledDuringALongSweep(t *testing.T) {
	w := newWorld(t, busyOrg(33))
	warm(w, w.enricher(enrich.Config{Interval: interval}, enrich.Deps{}), 4)
	const idle = 300
	reg := idleProjects(t, w, idle)
	l := &listings{next: http.DefaultTransport, slow: "idle-", delay: 10 * time.Millisecond}
	e := w.enricher(enrich.Config{Interval: 20 * time.Millisecond, Workers: 2}, enrich.Deps{Registry: reg, API: w.client(jobsapi.Config{}, l)})
	open := w.proj.OpenJobs(func(string) bool { return true })
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = e.Run(ctx) })
	swept := func(p string) bool { return strings.HasPrefix(p, "idle-") }
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if n := len(slices.DeleteFunc(l.listed(), func(p string) bool { return !swept(p) })); n == idle {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the sweep listed %d of %d projects in a minute", n, idle)
		}
	}
	cancel()
	wg.Wait()
	idleLeft := idle
	during := map[string]int{}
	for _, p := range l.listed() {
		if swept(p) {
			idleLeft--
		}
		if idleLeft == 0 {
			break // the sweep's last listing
		}
		during[p]++
	}
	for p := range open {
		if during[p] < 5 {
			t.Errorf("project %s with open jobs was listed %d times during a sweep of at least 1.5 s, at a 20 ms interval", p, during[p])
		}
	}
}

// hangingRegistry is a registry whose reads and writes wait until their
// context ends, as on a Bigtable that does not answer. Allow has nothing
// to write: no denial is known, as with the real registry.
type hangingRegistry struct{}

func (hangingRegistry) Touch(ctx context.Context, _ []string, _ time.Time) error {
	<-ctx.Done()
	return ctx.Err()
}

func (hangingRegistry) Active(ctx context.Context, _ time.Time) ([]string, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (hangingRegistry) Deny(ctx context.Context, _ registry.Denial) error {
	<-ctx.Done()
	return ctx.Err()
}

func (hangingRegistry) Allow(context.Context, string, string) error { return nil }

func (hangingRegistry) Denials(ctx context.Context) ([]registry.Denial, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestSweepOnHangingRegistry: while the registry does not answer, a cycle
// whose sweep is due still ends, within the registry's bound, and the
// projects with open jobs are polled.
func TestSweepOnHangingRegistry(t *testing.T) {
	w := newWorld(t, busyOrg(29))
	const bound = 200 * time.Millisecond
	e := w.enricher(enrich.Config{Interval: interval, SweepInterval: interval, RegistryTimeout: bound}, enrich.Deps{Registry: hangingRegistry{}})
	w.step(4 * interval)
	gets := func() int { return calls(w.api, simulation.MethodList) + calls(w.api, simulation.MethodGet) }
	for i := range 3 {
		before := gets()
		done := make(chan struct{})
		go func() {
			defer close(done)
			e.Cycle(t.Context())
		}()
		select {
		case <-done:
		case <-time.After(50 * bound):
			t.Fatalf("cycle %d with its sweep due did not end within %s while the registry hangs", i+1, 50*bound)
		}
		if gets() == before {
			t.Errorf("cycle %d polled no project while the registry hangs", i+1)
		}
		w.step(interval)
	}
}

// countingRegistry records no denial, and counts the reads of denials.
type countingRegistry struct {
	mu    sync.Mutex
	reads int
}

func (r *countingRegistry) Touch(context.Context, []string, time.Time) error    { return nil }
func (r *countingRegistry) Active(context.Context, time.Time) ([]string, error) { return nil, nil }
func (r *countingRegistry) Deny(context.Context, registry.Denial) error         { return nil }
func (r *countingRegistry) Allow(context.Context, string, string) error         { return nil }
func (r *countingRegistry) Denials(context.Context) ([]registry.Denial, error) {
	time.Sleep(10 * time.Millisecond) // a read takes a while: requests arrive meanwhile
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads++
	return nil, nil // as registry.Denials answers when no project denies anything
}

// TestDiagnosticsReadOnceWithoutDenials: diagnostics requests, together
// and one after another, read the registry once within the cache's 5 s,
// also when nothing is denied.
func TestDiagnosticsReadOnceWithoutDenials(t *testing.T) {
	w := newWorld(t, busyOrg(17))
	reg := &countingRegistry{}
	e := w.enricher(enrich.Config{}, enrich.Deps{Registry: reg})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if d, err := e.Diagnostics(t.Context()); err != nil || len(d.Problems) != 0 {
				t.Errorf("Diagnostics = %+v, %v; want no problem", d, err)
			}
		})
	}
	wg.Wait()
	for range 10 {
		if _, err := e.Diagnostics(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if reg.reads != 1 {
		t.Errorf("20 diagnostics requests within a moment read the registry %d times, want 1", reg.reads)
	}
}
