package jobsapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/api/option"

	"github.com/bqobserver/bqobserver/enrich/jobsapi"
	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/simulation"
)

// fixture is a simulated organization four minutes into its day, and a
// client of its jobs API.
type fixture struct {
	org    *simulation.Org
	api    *simulation.JobsAPI
	client *jobsapi.Client
	cfg    jobsapi.Config // the client's
}

func newFixture(t *testing.T, cfg jobsapi.Config) *fixture {
	t.Helper()
	org, err := simulation.New(simulation.Config{Seed: 7, Projects: 4, Rate: 2, DurationScale: 20})
	if err != nil {
		t.Fatal(err)
	}
	for range org.Generate(4 * time.Minute) {
	}
	srv := httptest.NewServer(org.JobsAPI())
	t.Cleanup(srv.Close)
	if cfg.Backoff == 0 {
		cfg.Backoff, cfg.MaxBackoff = time.Millisecond, 4*time.Millisecond
	}
	if cfg.QPS == 0 {
		cfg.QPS = 1000
	}
	cfg.Endpoint = srv.URL + "/bigquery/v2/"
	c, err := jobsapi.New(t.Context(), cfg, nil, option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{org: org, api: org.JobsAPI(), client: c, cfg: cfg}
}

// busiest is the project with the most open jobs, with their keys.
func (f *fixture) busiest(t *testing.T) (string, []events.JobKey) {
	t.Helper()
	var best string
	var keys []events.JobKey
	for _, p := range f.org.Projects() {
		jobs, err := f.client.ListOpen(t.Context(), p, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) > len(keys) {
			best, keys = p, keysOf(jobs)
		}
	}
	if len(keys) < 5 {
		t.Fatalf("the busiest project has %d open jobs; the fixture needs more", len(keys))
	}
	return best, keys
}

func keysOf(jobs []*bq.JobListJobs) []events.JobKey {
	var keys []events.JobKey
	for _, j := range jobs {
		r := j.JobReference
		keys = append(keys, events.JobKey{Project: r.ProjectId, Location: r.Location, JobID: r.JobId})
	}
	slices.SortFunc(keys, func(a, b events.JobKey) int { return strings.Compare(a.String(), b.String()) })
	return keys
}

// calls is how many calls of method project got.
func (f *fixture) calls(method, project string) int {
	return f.api.Calls()[simulation.Call{Method: method, Project: project}]
}

// TestListOpenReadsEveryPage lists a project two jobs a page and finds the
// same jobs as in one page, in one call per page, every one of them open
// in the simulation's truth.
func TestListOpenReadsEveryPage(t *testing.T) {
	f := newFixture(t, jobsapi.Config{PageSize: 2})
	project, want := f.busiest(t)
	before := f.calls(jobsapi.MethodList, project)
	jobs, err := f.client.ListOpen(t.Context(), project, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	got := keysOf(jobs)
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("jobs listed two a page differ from one page (-got +want):\n%s", diff)
	}
	if n, pages := f.calls(jobsapi.MethodList, project)-before, (len(want)+1)/2; n != pages && n != pages+1 {
		t.Errorf("%d calls for %d jobs two a page, want %d (or one more for an empty last page)", n, len(want), pages)
	}
	for _, k := range got {
		if tr, ok := f.org.Job(k); !ok || tr.State == events.StateDone {
			t.Errorf("listed job %s is %+v in the simulation", k, tr)
		}
	}
}

// TestListOpenSince lists only the jobs created at or after a time.
func TestListOpenSince(t *testing.T) {
	f := newFixture(t, jobsapi.Config{})
	project, all := f.busiest(t)
	jobs, err := f.client.ListOpen(t.Context(), project, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	created := map[events.JobKey]int64{}
	var times []int64
	for _, j := range jobs {
		r := j.JobReference
		created[events.JobKey{Project: r.ProjectId, Location: r.Location, JobID: r.JobId}] = j.Statistics.CreationTime
		times = append(times, j.Statistics.CreationTime)
	}
	slices.Sort(times)
	since := time.UnixMilli(times[len(times)/2])
	var want []events.JobKey
	for _, k := range all {
		if created[k] >= since.UnixMilli() {
			want = append(want, k)
		}
	}
	got, err := f.client.ListOpen(t.Context(), project, since)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(keysOf(got), want); diff != "" {
		t.Errorf("jobs created since %s (-got +want):\n%s", since, diff)
	}
}

// TestErrorKinds holds each answer of the API to the kind of error the
// client returns and to the attempts it makes.
func TestErrorKinds(t *testing.T) {
	type want struct {
		Kind       string
		Permission string
		Attempts   int
	}
	for _, tc := range []struct {
		name  string
		setup func(f *fixture, project string)
		call  string
		want  want
	}{
		{"list denied", func(f *fixture, p string) { f.api.Deny(p, true) }, jobsapi.MethodList,
			want{"denied", jobsapi.PermissionListAll, 1}},
		{"get denied", func(f *fixture, p string) { f.api.DenyMethod(p, simulation.MethodGet, true) }, jobsapi.MethodGet,
			want{"denied", jobsapi.PermissionGet, 1}},
		{"list denied, get allowed", func(f *fixture, p string) { f.api.DenyMethod(p, simulation.MethodList, true) }, jobsapi.MethodGet,
			want{"ok", "", 1}},
		{"429 twice then an answer", func(f *fixture, p string) { f.api.FailNext(p, simulation.MethodList, 2, simulation.FaultRateLimit) },
			jobsapi.MethodList, want{"ok", "", 3}},
		{"403 rateLimitExceeded twice then an answer", func(f *fixture, p string) {
			setFaults(f, simulation.Faults{RateLimitStatus: http.StatusForbidden})
			f.api.FailNext(p, simulation.MethodList, 2, simulation.FaultRateLimit)
		}, jobsapi.MethodList, want{"ok", "", 3}},
		{"503 once then an answer", func(f *fixture, p string) { f.api.FailNext(p, simulation.MethodGet, 1, simulation.FaultBackend) },
			jobsapi.MethodGet, want{"ok", "", 2}},
		{"429 on every attempt", func(f *fixture, p string) { f.api.FailNext(p, simulation.MethodList, 99, simulation.FaultRateLimit) },
			jobsapi.MethodList, want{"rate_limited", "", 5}},
		{"403 rateLimitExceeded on every attempt", func(f *fixture, p string) {
			setFaults(f, simulation.Faults{RateLimitStatus: http.StatusForbidden})
			f.api.FailNext(p, simulation.MethodGet, 99, simulation.FaultRateLimit)
		}, jobsapi.MethodGet, want{"rate_limited", "", 5}},
		{"503 on every attempt", func(f *fixture, p string) { f.api.FailNext(p, simulation.MethodList, 99, simulation.FaultBackend) },
			jobsapi.MethodList, want{"unavailable", "", 5}},
		{"cancel", func(*fixture, string) {}, jobsapi.MethodCancel, want{"ok", "", 1}},
		{"cancel denied", func(f *fixture, p string) { f.api.DenyMethod(p, simulation.MethodCancel, true) }, jobsapi.MethodCancel,
			want{"denied", jobsapi.PermissionUpdate, 1}},
		{"cancel: 503 once then an answer", func(f *fixture, p string) { f.api.FailNext(p, simulation.MethodCancel, 1, simulation.FaultBackend) },
			jobsapi.MethodCancel, want{"ok", "", 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, jobsapi.Config{})
			project, keys := f.busiest(t)
			tc.setup(f, project)
			before := f.calls(tc.call, project)
			var err error
			switch tc.call {
			case jobsapi.MethodList:
				_, err = f.client.ListOpen(t.Context(), project, time.Time{})
			case jobsapi.MethodGet:
				_, err = f.client.Get(t.Context(), keys[0])
			case jobsapi.MethodCancel:
				_, err = f.client.Cancel(t.Context(), keys[0])
			}
			got := want{Kind: kindOf(err), Attempts: f.calls(tc.call, project) - before}
			var denied *jobsapi.DeniedError
			if errors.As(err, &denied) {
				got.Permission = denied.Permission
				role := jobsapi.ViewerRole
				if tc.call == jobsapi.MethodCancel {
					role = jobsapi.CancelRole
				}
				if denied.Project != project || denied.Role() != role {
					t.Errorf("denial %+v names project %s and role %s", denied, denied.Project, denied.Role())
				}
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("outcome (-got +want):\n%s\nerror: %v", diff, err)
			}
		})
	}
}

func setFaults(f *fixture, faults simulation.Faults) {
	if err := f.api.SetFaults(faults); err != nil {
		panic(err)
	}
}

func kindOf(err error) string {
	var denied *jobsapi.DeniedError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &denied):
		return "denied"
	case errors.Is(err, jobsapi.ErrNotFound):
		return "not_found"
	case errors.Is(err, jobsapi.ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, jobsapi.ErrUnavailable):
		return "unavailable"
	}
	return "other: " + err.Error()
}

// TestGetUnknownJob is a 404, not retried.
func TestGetUnknownJob(t *testing.T) {
	f := newFixture(t, jobsapi.Config{})
	project, keys := f.busiest(t)
	k := keys[0]
	k.JobID = "bquxjob_no_such_job"
	before := f.calls(jobsapi.MethodGet, project)
	_, err := f.client.Get(t.Context(), k)
	if got := kindOf(err); got != "not_found" {
		t.Errorf("get of an unknown job: %s (%v), want not_found", got, err)
	}
	if n := f.calls(jobsapi.MethodGet, project) - before; n != 1 {
		t.Errorf("%d calls for a 404, want 1", n)
	}
}

// TestRateLimit spaces calls QPS apart once the burst is spent: a lower
// bound, which a slow machine cannot break.
func TestRateLimit(t *testing.T) {
	const qps = 40
	f := newFixture(t, jobsapi.Config{QPS: qps})
	project, _ := f.busiest(t)
	start := time.Now()
	const calls = qps + 21 // the burst, then 21 that wait
	for range calls {
		if _, err := f.client.Probe(t.Context(), project); err != nil {
			t.Fatal(err)
		}
	}
	if took, least := time.Since(start), 500*time.Millisecond; took < least {
		t.Errorf("%d calls at %d per second took %v, less than %v", calls, qps, took, least)
	}
}

// TestCancelSkipsTheRateLimit: with the rate limit's tokens spent and the
// next one further away than the caller's deadline, a listing gives up at
// once, and a cancel is still made.
func TestCancelSkipsTheRateLimit(t *testing.T) {
	f := newFixture(t, jobsapi.Config{})
	project, keys := f.busiest(t)
	cfg := f.cfg
	cfg.QPS = 0.01 // one token, then one every 100s
	slow, err := jobsapi.New(t.Context(), cfg, nil, option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Probe(t.Context(), project); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := slow.Probe(ctx, project); !errors.Is(err, jobsapi.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a listing without a token: %v, want it to give up waiting, as at a deadline", err)
	}
	// A caller that went away is told so, not that a deadline passed.
	gone, leave := context.WithCancel(t.Context())
	leave()
	if _, err := slow.Probe(gone, project); !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a listing whose caller left: %v, want context.Canceled and no deadline", err)
	}
	state, err := slow.Cancel(ctx, keys[0])
	if err != nil {
		t.Fatalf("cancel without a token: %v", err)
	}
	if state == "" {
		t.Errorf("cancel answered no state")
	}
	if !errors.Is(jobsapi.ErrUnavailable, events.ErrUnavailable) || !errors.Is(jobsapi.ErrRateLimited, events.ErrUnavailable) {
		t.Errorf("the jobs API's transient errors do not match events.ErrUnavailable")
	}
}

// TestTryGetDoesNotQueue: with the burst spent, TryGets made together take
// at most the tokens of the next TryWait and fail at once as rate limited
// for the rest, without calling; a listing made after them waits no
// longer than that.
func TestTryGetDoesNotQueue(t *testing.T) {
	const qps = 4
	f := newFixture(t, jobsapi.Config{QPS: qps})
	project, keys := f.busiest(t)
	for range qps { // the burst
		if _, err := f.client.Probe(t.Context(), project); err != nil {
			t.Fatal(err)
		}
	}
	before := f.calls(jobsapi.MethodGet, project)
	var mu sync.Mutex
	kinds := map[string]int{}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := f.client.TryGet(t.Context(), keys[0])
			mu.Lock()
			kinds[kindOf(err)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if kinds["rate_limited"] < 18 || kinds["ok"]+kinds["rate_limited"] != 20 {
		t.Errorf("20 TryGets with the burst spent: %v, want at most 2 ok and the others rate_limited", kinds)
	}
	if n := f.calls(jobsapi.MethodGet, project) - before; n != kinds["ok"] {
		t.Errorf("%d jobs.get calls for %d TryGets that got a token", n, kinds["ok"])
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if _, err := f.client.Probe(ctx, project); err != nil {
		t.Errorf("a listing within a second after the TryGets: %v", err)
	}
}

// TestConfigValidate reports every bad setting at once.
func TestConfigValidate(t *testing.T) {
	err := jobsapi.Config{QPS: -1, PageSize: 5000, Attempts: -2, Backoff: time.Second, MaxBackoff: time.Millisecond, CallTimeout: -1}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 5 {
		t.Errorf("%d problems reported, want 5: %v", n, err)
	}
	if err := (jobsapi.Config{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
