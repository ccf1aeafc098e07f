package simulation_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/api/googleapi"

	"github.com/bqobserver/bqobserver/events"
)

func listedKeys(js []*bq.JobListJobs) []events.JobKey {
	var out []events.JobKey
	for _, j := range js {
		out = append(out, keyOf(j.JobReference))
	}
	return out
}

// pages returns the jobs of every page of call.
func pages(t *testing.T, call *bq.JobsListCall) []*bq.JobListJobs {
	t.Helper()
	var out []*bq.JobListJobs
	err := call.Pages(context.Background(), func(l *bq.JobList) error {
		out = append(out, l.Jobs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mostPending returns the project with the most pending jobs, running the
// simulation on until some project has one.
func (f *apiFixture) mostPending(t *testing.T) string {
	t.Helper()
	for range 30 {
		best, n := "", 0
		for _, p := range f.org.Projects() {
			if js := pages(t, f.rest.Jobs.List(p).AllUsers(true).StateFilter("pending").Projection("minimal")); len(js) > n {
				best, n = p, len(js)
			}
		}
		if n > 0 {
			return best
		}
		f.generate(10 * time.Second)
	}
	t.Fatal("no pending job in five minutes")
	return ""
}

// busiestOpen returns the project with the most open jobs.
func (f *apiFixture) busiestOpen(t *testing.T) string {
	t.Helper()
	best, n := "", 0
	for _, p := range f.org.Projects() {
		if js := f.listOpen(t, p, 1000); len(js) > n {
			best, n = p, len(js)
		}
	}
	return best
}

// TestJobsAPIPagingIsStableWhileJobsChange lists the open jobs of a busy
// project three at a time, with a minute of activity between the first
// page and the others: no job is listed twice, every job open from the
// first page to the last is listed, the later pages hold only jobs older
// than the first page's, and each job is listed in the state it had when
// its page was asked for.
func TestJobsAPIPagingIsStableWhileJobsChange(t *testing.T) {
	f := newAPIFixture(t)
	p := f.busiestOpen(t)
	before := listedKeys(f.listOpen(t, p, 1000))
	first, err := f.rest.Jobs.List(p).AllUsers(true).StateFilter("pending", "running").MaxResults(3).Do()
	if err != nil {
		t.Fatal(err)
	}
	f.generate(time.Minute)
	after := listedKeys(f.listOpen(t, p, 1000))
	paged := first.Jobs
	call := f.rest.Jobs.List(p).AllUsers(true).StateFilter("pending", "running").MaxResults(3)
	for token := first.NextPageToken; token != ""; {
		page, err := call.PageToken(token).Do()
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page.Jobs {
			if !slices.Contains(after, keyOf(j.JobReference)) || j.Statistics.CreationTime > first.Jobs[2].Statistics.CreationTime {
				t.Errorf("job %s (created %d) on a later page: open now %v; want an open job created before %d",
					j.Id, j.Statistics.CreationTime, slices.Contains(after, keyOf(j.JobReference)), first.Jobs[2].Statistics.CreationTime)
			}
		}
		paged, token = append(paged, page.Jobs...), page.NextPageToken
	}
	got := listedKeys(paged)
	seen := map[events.JobKey]bool{}
	for _, k := range got {
		if seen[k] {
			t.Errorf("job %s listed twice", k)
		}
		seen[k] = true
	}
	for _, k := range before {
		if slices.Contains(after, k) && !seen[k] {
			t.Errorf("job %s open throughout, not listed", k)
		}
	}
	if len(before) < 10 || len(got) < 6 {
		t.Fatalf("%d open jobs, %d listed in pages: the fixture needs more", len(before), len(got))
	}
}

// TestJobsAPIListCreationTimeBounds pins minCreationTime and
// maxCreationTime: milliseconds since the epoch, "only jobs created after
// or at this timestamp" and "before or at this timestamp"
// (https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/list).
func TestJobsAPIListCreationTimeBounds(t *testing.T) {
	f := newAPIFixture(t)
	p := f.org.Projects()[0]
	all := pages(t, f.rest.Jobs.List(p).AllUsers(true).Projection("minimal").MaxResults(1000))
	if len(all) < 1000 {
		t.Fatalf("listing %s: %d jobs; the fixture needs more", p, len(all))
	}
	ct := uint64(all[len(all)/2].Statistics.CreationTime)
	within := func(lo, hi uint64) []events.JobKey {
		var out []events.JobKey
		for _, j := range all {
			if c := uint64(j.Statistics.CreationTime); c >= lo && c <= hi {
				out = append(out, keyOf(j.JobReference))
			}
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		min, max uint64 // 0 for unset
		want     []events.JobKey
	}{
		{"at its creation", ct, ct, within(ct, ct)},
		{"from its creation", ct, 0, within(ct, 1<<62)},
		{"until its creation", 0, ct, within(0, ct)},
		{"after it", ct + 1, 0, within(ct+1, 1<<62)},
		{"before it", 0, ct - 1, within(0, ct-1)},
		{"the five minutes around it", ct - 150000, ct + 150000, within(ct-150000, ct+150000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call := f.rest.Jobs.List(p).AllUsers(true).Projection("minimal").MaxResults(1000)
			if tc.min > 0 {
				call.MinCreationTime(tc.min)
			}
			if tc.max > 0 {
				call.MaxCreationTime(tc.max)
			}
			if diff := cmp.Diff(tc.want, listedKeys(pages(t, call))); diff != "" {
				t.Errorf("jobs listed (-want +got):\n%s", diff)
			}
		})
	}
}

// TestJobsAPIListStateFilter checks that a repeated stateFilter lists the
// union of its states, and that the states partition a project's jobs.
func TestJobsAPIListStateFilter(t *testing.T) {
	f := newAPIFixture(t)
	p := f.mostPending(t)
	list := func(states ...string) map[events.JobKey]string {
		out := map[events.JobKey]string{}
		for _, j := range pages(t, f.rest.Jobs.List(p).AllUsers(true).StateFilter(states...).MaxResults(1000)) {
			out[keyOf(j.JobReference)] = j.State
		}
		return out
	}
	pending, running, done := list("pending"), list("running"), list("done")
	union := map[events.JobKey]string{}
	for _, m := range []map[events.JobKey]string{pending, running, done} {
		for k, s := range m {
			union[k] = s
		}
	}
	open := map[events.JobKey]string{}
	for k, s := range union {
		if s != "DONE" {
			open[k] = s
		}
	}
	if diff := cmp.Diff(open, list("pending", "running")); diff != "" {
		t.Errorf("pending and running differ from the two lists (-union +both):\n%s", diff)
	}
	if diff := cmp.Diff(union, list()); diff != "" {
		t.Errorf("no filter differs from the three states (-union +all):\n%s", diff)
	}
	if len(pending)+len(running)+len(done) != len(union) || len(pending) == 0 || len(running) == 0 || len(done) == 0 {
		t.Errorf("%d pending, %d running, %d done, %d in all: want three non-empty disjoint sets", len(pending), len(running), len(done), len(union))
	}
}

// TestJobsAPIListProjections pins the projections: "full: Includes all job
// data", "minimal: Does not include the job configuration". A listed job
// is the job jobs.get returns at the same moment, less what only jobs.get
// has, however often it is listed as it runs.
func TestJobsAPIListProjections(t *testing.T) {
	f := newAPIFixture(t)
	p := f.busiestOpen(t)
	plans := 0
	for range 3 {
		lists := map[string][]*bq.JobListJobs{}
		for _, projection := range []string{"full", "minimal"} {
			lists[projection] = pages(t, f.rest.Jobs.List(p).AllUsers(true).StateFilter("running").Projection(projection))
		}
		full, minimal := lists["full"], lists["minimal"]
		if len(full) == 0 || len(full) != len(minimal) {
			t.Fatalf("%d jobs in full, %d in minimal", len(full), len(minimal))
		}
		for i, j := range full {
			got := f.get(t, keyOf(j.JobReference))
			listed := &bq.Job{Id: j.Id, JobReference: j.JobReference, Configuration: j.Configuration, Statistics: j.Statistics,
				Status: j.Status, UserEmail: j.UserEmail, PrincipalSubject: j.PrincipalSubject}
			got.Kind, got.Etag, got.SelfLink, got.ServerResponse = "", "", "", googleapi.ServerResponse{}
			if diff := cmp.Diff(got, listed); diff != "" {
				t.Errorf("job %s listed differs from jobs.get's (-get +list):\n%s", j.Id, diff)
			}
			if q := j.Statistics.Query; q != nil && len(q.QueryPlan) > 0 {
				plans++
			}
			m := minimal[i]
			if m.Configuration != nil || m.Id != j.Id || cmp.Diff(j.Statistics, m.Statistics) != "" || m.Status == nil || m.UserEmail != j.UserEmail {
				t.Errorf("job %s in minimal: configuration %v, statistics as in full %v, status %v, user %q: want all but the configuration",
					m.Id, m.Configuration != nil, cmp.Equal(j.Statistics, m.Statistics), m.Status != nil, m.UserEmail)
			}
		}
		f.generate(13 * time.Second)
	}
	if plans == 0 {
		t.Error("no running job listed with its query plan")
	}
}

// TestJobsAPIRejectsInvalidListRequests pins the 400 answers to malformed
// parameters.
func TestJobsAPIRejectsInvalidListRequests(t *testing.T) {
	f := newAPIFixtureWith(t, apiConfig(), time.Minute)
	p := "projects/" + f.org.Projects()[0] + "/jobs?"
	for _, q := range []string{"stateFilter=finished", "pageToken=not-a-token", "maxResults=-1", "minCreationTime=yesterday",
		"projection=everything", "allUsers=maybe"} {
		code, e := f.rawGet(t, p+q)
		if got, want := errorOf(e), (wantError{400, "invalid", "global", "INVALID_ARGUMENT"}); code != 400 || got != want {
			t.Errorf("GET %s: %d %+v, want %+v", q, code, got, want)
		}
	}
}

// TestJobsAPIForgetsJobsAfterRetention checks that a finished job is
// answered 404 once the retention has passed since its end, and no longer
// listed, while a job that ended more recently is still shown, however long
// ago it was created, and so is a job still running: BigQuery keeps job
// information "for a six month period after creation"
// (https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/list), a
// job runs six hours at most, and the simulation counts from the end so
// that a short retention does not hide how a long job ended.
func TestJobsAPIForgetsJobsAfterRetention(t *testing.T) {
	const retention = 10 * time.Minute
	cfg := apiConfig()
	cfg.Retention = retention
	f := newAPIFixtureWith(t, cfg, 30*time.Minute)
	now := f.org.Now()
	var expired, kept, keptLong, old int
	for k, ev := range f.completed {
		_, err := f.rest.Jobs.Get(k.Project, k.JobID).Location(k.Location).Do()
		want := http.StatusOK
		switch {
		case now.Sub(ev.EndTime) > retention:
			want, expired = 404, expired+1
		case now.Sub(ev.CreateTime) > retention:
			keptLong++
		default:
			kept++
		}
		if got := statusOf(err); got != want {
			t.Errorf("job %s created %v and ended %v before now: %d, want %d", k, now.Sub(ev.CreateTime), now.Sub(ev.EndTime), got, want)
		}
	}
	for _, p := range f.org.Projects() {
		all, err := f.rest.Jobs.List(p).AllUsers(true).MaxResults(1000).Do()
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range all.Jobs {
			age := now.Sub(time.UnixMilli(j.Statistics.CreationTime))
			switch {
			case j.State == "DONE" && now.Sub(time.UnixMilli(j.Statistics.EndTime)) > retention:
				t.Errorf("job %s ended %v ago still listed", j.Id, now.Sub(time.UnixMilli(j.Statistics.EndTime)))
			case j.State != "DONE" && age > retention:
				old++
			}
		}
	}
	if expired == 0 || kept == 0 || keptLong == 0 || old == 0 {
		t.Errorf("%d jobs expired, %d kept, %d kept though created before the retention, %d still running past it: want some of each",
			expired, kept, keptLong, old)
	}
}

// TestJobsAPIListsTheOperatorsOwnJobs checks that, without allUsers, the
// list holds only the caller's jobs: "Users are able to list the jobs they
// created".
func TestJobsAPIListsTheOperatorsOwnJobs(t *testing.T) {
	cfg := apiConfig()
	f := newAPIFixtureWith(t, cfg, 10*time.Minute)
	p := f.org.Projects()[0]
	l, err := f.rest.Jobs.List(p).AllUsers(true).MaxResults(1).Do()
	if err != nil || len(l.Jobs) != 1 {
		t.Fatalf("listing %s: %v", p, err)
	}
	cfg.Operator = l.Jobs[0].UserEmail // the same organization, called by one of its users
	g := newAPIFixtureWith(t, cfg, 10*time.Minute)
	mine, err := g.rest.Jobs.List(p).MaxResults(1000).Do()
	if err != nil {
		t.Fatal(err)
	}
	all, err := g.rest.Jobs.List(p).AllUsers(true).MaxResults(1000).Do()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, j := range all.Jobs {
		if j.UserEmail == cfg.Operator {
			want = append(want, j.Id)
		}
	}
	var got []string
	for _, j := range mine.Jobs {
		got = append(got, j.Id)
	}
	if diff := cmp.Diff(want, got); diff != "" || len(got) == 0 {
		t.Errorf("jobs of %s listed without allUsers (-want +got):\n%s", cfg.Operator, diff)
	}
}
