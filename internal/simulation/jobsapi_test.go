package simulation_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/google/go-cmp/cmp"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/simulation"
)

// apiFixture is a simulated organization a while into its day, its jobs
// API served over HTTP, and the official client and the REST client
// pointed at it.
type apiFixture struct {
	org    *simulation.Org
	url    string // of the API, with the /bigquery/v2/ prefix
	client *bigquery.Client
	rest   *bq.Service
	// completed holds the completion events delivered so far, by job.
	completed map[events.JobKey]events.Event
}

// apiConfig is the fixture's organization: small, busy, delivering every
// entry once and promptly, in the v2 format only (the jobs API is the
// same whatever the entries' format).
func apiConfig() simulation.Config {
	return simulation.Config{Seed: 11, Rate: 3, Projects: 4, Delivery: &simulation.Delivery{}, Formats: []string{simulation.FormatV2}}
}

func newAPIFixture(t *testing.T) *apiFixture {
	return newAPIFixtureWith(t, apiConfig(), 20*time.Minute)
}

// newAPIFixtureWith runs an organization of cfg for warm before serving
// its API.
func newAPIFixtureWith(t *testing.T, cfg simulation.Config, warm time.Duration) *apiFixture {
	t.Helper()
	f := &apiFixture{org: newOrg(t, cfg), completed: map[events.JobKey]events.Event{}}
	f.generate(warm)
	srv := httptest.NewServer(f.org.JobsAPI())
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/bigquery/v2/"
	ctx := context.Background()
	opts := []option.ClientOption{option.WithEndpoint(f.url), option.WithoutAuthentication()}
	client, err := bigquery.NewClient(ctx, f.org.Projects()[0], opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	f.client = client
	if f.rest, err = bq.NewService(ctx, opts...); err != nil {
		t.Fatal(err)
	}
	return f
}

// generate runs the simulation for d and returns the entries delivered.
func (f *apiFixture) generate(d time.Duration) []simulation.Entry {
	var out []simulation.Entry
	for e := range f.org.Generate(d) {
		for _, ev := range e.Meant {
			if ev.Kind == events.KindCompleted {
				f.completed[ev.Job] = ev
			}
		}
		out = append(out, e)
	}
	return out
}

// list lists a project's jobs with the official client, pageSize at a time.
func (f *apiFixture) list(t *testing.T, project string, state bigquery.State, pageSize int) []*bigquery.Job {
	t.Helper()
	it := f.client.Jobs(context.Background())
	it.ProjectID, it.AllUsers, it.State = project, true, state
	it.PageInfo().MaxSize = pageSize
	var jobs []*bigquery.Job
	for {
		j, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return jobs
		}
		if err != nil {
			t.Fatalf("listing jobs of %s: %v", project, err)
		}
		jobs = append(jobs, j)
	}
}

func ids(jobs []*bigquery.Job) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.Location()+"."+j.ID())
	}
	return out
}

// busiest returns the project with the most running jobs, and them.
func (f *apiFixture) busiest(t *testing.T) (string, []*bigquery.Job) {
	t.Helper()
	var project string
	var running []*bigquery.Job
	for _, p := range f.org.Projects() {
		if js := f.list(t, p, bigquery.Running, 1000); len(js) > len(running) {
			project, running = p, js
		}
	}
	if len(running) < 3 {
		t.Fatalf("the busiest project runs %d jobs; the fixture needs more", len(running))
	}
	return project, running
}

func TestJobsAPIListsRunningJobsWithPaging(t *testing.T) {
	f := newAPIFixture(t)
	project, all := f.busiest(t)
	paged := f.list(t, project, bigquery.Running, 2)
	if diff := cmp.Diff(ids(all), ids(paged)); diff != "" {
		t.Errorf("running jobs listed 2 per page differ from one page (-one +paged):\n%s", diff)
	}
	var prev time.Time
	for i, j := range all {
		st := j.LastStatus()
		if st.State != bigquery.Running {
			t.Errorf("job %s listed with state filter running is in state %v", j.ID(), st.State)
		}
		created := st.Statistics.CreationTime
		if i > 0 && created.After(prev) {
			t.Errorf("job %s created %v listed after a job created %v: want newest first", j.ID(), created, prev)
		}
		prev = created
		if j.Email() == "" {
			t.Errorf("job %s listed without its user", j.ID())
		}
	}
	done := f.list(t, project, bigquery.Done, 1000)
	for _, j := range done {
		if slices.Contains(ids(all), j.Location()+"."+j.ID()) {
			t.Errorf("job %s listed both running and done", j.ID())
		}
	}
	if len(done) == 0 {
		t.Error("no done jobs listed")
	}
}

// TestJobsAPIMatchesAuditEntries checks that a finished job reports in
// the API what its completion entry reported.
func TestJobsAPIMatchesAuditEntries(t *testing.T) {
	f := newAPIFixture(t)
	checked := 0
	keys := slices.SortedFunc(maps.Keys(f.completed), func(a, b events.JobKey) int { return strings.Compare(a.String(), b.String()) })
	for _, key := range keys {
		ev := f.completed[key]
		if ev.SlotMs == nil || ev.ParentJobID != "" || ev.JobType != events.JobTypeQuery || checked == 20 {
			continue
		}
		checked++
		j, err := f.client.JobFromProject(context.Background(), key.Project, key.JobID, key.Location)
		if err != nil {
			t.Fatalf("getting %s: %v", key, err)
		}
		st := j.LastStatus()
		got := struct {
			Done    bool
			SlotMs  int64
			Created time.Time
			Email   string
		}{st.Done(), st.Statistics.TotalSlotDuration.Milliseconds(), st.Statistics.CreationTime.UTC(), j.Email()}
		want := got
		want.Done, want.SlotMs, want.Created, want.Email = true, *ev.SlotMs, ev.CreateTime, ev.Principal
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("job %s in the API differs from its completion entry (-entry +api):\n%s", key, diff)
		}
		if ev.BytesProcessed != nil && st.Statistics.TotalBytesProcessed != *ev.BytesProcessed {
			t.Errorf("job %s: API says %d bytes processed, the entry %d", key, st.Statistics.TotalBytesProcessed, *ev.BytesProcessed)
		}
	}
	if checked == 0 {
		t.Fatal("no completed query job to check")
	}
}

func TestJobsAPICancelLogsAndStopsTheJob(t *testing.T) {
	cfg := apiConfig()
	cfg.Formats = nil // both
	f := newAPIFixtureWith(t, cfg, 20*time.Minute)
	project, running := f.busiest(t)
	target := running[len(running)-1] // the oldest: its first entries are long delivered
	key := events.JobKey{Project: project, Location: target.Location(), JobID: target.ID()}
	job, err := f.client.JobFromProject(context.Background(), project, key.JobID, key.Location)
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Cancel(context.Background()); err != nil {
		t.Fatalf("cancelling %s: %v", key, err)
	}
	got := describeEntries(f.generate(time.Minute), key)
	slices.Sort(got)
	want := []string{
		"v1 completed 1: Job execution was cancelled: User requested cancellation",
		"v1 skipped cancel call",
		"v2 cancel_requested by " + simulation.DefaultOperator,
		"v2 completed 1: Job execution was cancelled: User requested cancellation",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries of the cancelled job (-want +got):\n%s", diff)
	}
	st, err := job.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var bqErr *bigquery.Error
	if !st.Done() || !errors.As(st.Err(), &bqErr) || bqErr.Reason != "stopped" {
		t.Errorf("cancelled job: done %v, error %v; want done with reason stopped", st.Done(), st.Err())
	}
	calls := f.org.JobsAPI().Calls()
	if got := calls[simulation.Call{Method: simulation.MethodCancel, Project: project}]; got != 1 {
		t.Errorf("jobs.cancel calls on %s = %d, want 1", project, got)
	}
	if got := calls[simulation.Call{Method: simulation.MethodGet, Project: project}]; got != 2 {
		t.Errorf("jobs.get calls on %s = %d, want 2", project, got)
	}
}

// describeEntries describes the entries of one job, in a form to compare.
func describeEntries(entries []simulation.Entry, key events.JobKey) []string {
	var got []string
	for _, e := range entries {
		if len(e.Meant) == 0 {
			if e.Format == simulation.FormatV1 && containsJob(e.Data, key.JobID) {
				got = append(got, "v1 skipped cancel call")
			}
			continue
		}
		ev := e.Meant[0]
		if ev.Job != key {
			continue
		}
		desc := e.Format + " " + string(ev.Kind)
		if ev.Kind == events.KindCancelRequested {
			desc += " by " + ev.CancelRequestedBy
		}
		if ev.Error != nil {
			desc += " " + ev.Error.Code + ": " + ev.Error.Message
		}
		got = append(got, desc)
	}
	return got
}

func containsJob(data []byte, jobID string) bool {
	return strings.Contains(string(data), "/jobs/"+jobID+`"`)
}

func TestJobsAPIDeniesPermission(t *testing.T) {
	f := newAPIFixture(t)
	project := f.org.Projects()[1]
	api := f.org.JobsAPI()
	api.Deny(project, true)
	it := f.client.Jobs(context.Background())
	it.ProjectID, it.AllUsers = project, true
	_, err := it.Next()
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) || gerr.Code != 403 || len(gerr.Errors) != 1 || gerr.Errors[0].Reason != "accessDenied" {
		t.Fatalf("listing a denied project: %v; want a 403 accessDenied", err)
	}
	want := "Access Denied: Project " + project + ": User does not have bigquery.jobs.listAll permission in project " + project + "."
	if gerr.Message != want {
		t.Errorf("denial message %q, want %q", gerr.Message, want)
	}
	api.Deny(project, false)
	if js := f.list(t, project, bigquery.StateUnspecified, 10); len(js) == 0 {
		t.Error("no jobs listed once the denial is off")
	}
	if got := api.Calls()[simulation.Call{Method: simulation.MethodList, Project: project}]; got < 2 {
		t.Errorf("jobs.list calls on %s = %d, want the denied one and at least one more", project, got)
	}
}

func TestJobsAPIListFilters(t *testing.T) {
	f := newAPIFixture(t)
	project := f.org.Projects()[0]
	all := f.list(t, project, bigquery.StateUnspecified, 1000)
	var parent *bigquery.Job
	for _, j := range all {
		if j.LastStatus().Statistics.NumChildJobs > 0 {
			parent = j
			break
		}
	}
	if parent == nil {
		t.Fatal("no script among the listed jobs")
	}
	it := f.client.Jobs(context.Background())
	it.ProjectID, it.AllUsers, it.ParentJobID = project, true, parent.ID()
	children, err := drain(it)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(children)) != parent.LastStatus().Statistics.NumChildJobs {
		t.Errorf("script %s ran %d statements, %d listed as its children", parent.ID(), parent.LastStatus().Statistics.NumChildJobs, len(children))
	}
	for _, c := range children {
		if c.LastStatus().Statistics.ParentJobID != parent.ID() || slices.Contains(ids(all), c.Location()+"."+c.ID()) {
			t.Errorf("child %s: parent %q, listed among top-level jobs %v", c.ID(), c.LastStatus().Statistics.ParentJobID, slices.Contains(ids(all), c.ID()))
		}
	}
	since := f.org.Now().Add(-5 * time.Minute)
	it = f.client.Jobs(context.Background())
	it.ProjectID, it.AllUsers, it.MinCreationTime = project, true, since
	recent, err := drain(it)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range recent {
		if j.LastStatus().Statistics.CreationTime.Before(since) {
			t.Errorf("job %s created %v listed with minCreationTime %v", j.ID(), j.LastStatus().Statistics.CreationTime, since)
		}
	}
	if len(recent) == 0 || len(recent) >= len(all) {
		t.Errorf("%d jobs created in the last 5 minutes of %d", len(recent), len(all))
	}
	it = f.client.Jobs(context.Background())
	it.ProjectID = project // the caller's own jobs: the operator submitted none
	if mine, err := drain(it); err != nil || len(mine) != 0 {
		t.Errorf("listing without allUsers: %d jobs, %v; want none", len(mine), err)
	}
}

func drain(it *bigquery.JobIterator) ([]*bigquery.Job, error) {
	var out []*bigquery.Job
	for {
		j, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
}

// TestJobsAPIRawShapes checks, below the client, what the minimal
// projection leaves out and the shape of errors.
func TestJobsAPIRawShapes(t *testing.T) {
	org := newOrg(t, simulation.Config{Seed: 11, Rate: 3, Projects: 4})
	for range org.Generate(5 * time.Minute) {
	}
	srv := httptest.NewServer(org.JobsAPI())
	defer srv.Close()
	p := org.Projects()[0]
	for _, tc := range []struct {
		path   string
		status int
		want   string // a fragment of the body
		absent string // a fragment that must not be in it
	}{
		{"/bigquery/v2/projects/" + p + "/jobs?allUsers=true&projection=minimal&maxResults=3", 200, `"kind":"bigquery#jobList"`, `"configuration"`},
		{"/projects/" + p + "/jobs?allUsers=true&maxResults=3", 200, `"configuration"`, ""},
		{"/bigquery/v2/projects/" + p + "/jobs?stateFilter=finished", 400, `"reason":"invalid"`, ""},
		{"/bigquery/v2/projects/" + p + "/jobs/no-such-job?location=US", 404,
			`{"error":{"code":404,"message":"Not found: Job ` + p + `:US.no-such-job","errors":[{"message":"Not found: Job ` + p + `:US.no-such-job","domain":"global","reason":"notFound"}],"status":"NOT_FOUND"}}`, ""},
		{"/bigquery/v2/projects/no-such-project/jobs", 404, `"Not found: Project no-such-project"`, ""},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) || (tc.absent != "" && strings.Contains(string(body), tc.absent)) {
			t.Errorf("GET %s: %s\n%s\nwant %d with %s and without %q", tc.path, resp.Status, clip(body), tc.status, tc.want, tc.absent)
		}
	}
}
