package simulation_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
)

// TestJobsAPIAnswersOnlyTheSelectedFields asks each method for a partial
// response and compares the paths of every member of the answer with
// those selected.
func TestJobsAPIAnswersOnlyTheSelectedFields(t *testing.T) {
	f := newAPIFixture(t)
	project, running := f.busiest(t)
	job := running[0]
	jobPath := "projects/" + project + "/jobs/" + job.ID() + "?location=" + job.Location()
	for _, tc := range []struct {
		name, method, path, fields string
		want                       []string
	}{
		{"list", http.MethodGet, "projects/" + project + "/jobs?allUsers=true&stateFilter=running&maxResults=2",
			"jobs(id,jobReference,status/state,statistics(creationTime,startTime)),nextPageToken",
			[]string{"jobs", "jobs/id", "jobs/jobReference", "jobs/jobReference/jobId", "jobs/jobReference/location",
				"jobs/jobReference/projectId", "jobs/statistics", "jobs/statistics/creationTime", "jobs/statistics/startTime",
				"jobs/status", "jobs/status/state", "nextPageToken"}},
		{"list, a path then its whole", http.MethodGet, "projects/" + project + "/jobs?allUsers=true&stateFilter=running&maxResults=1",
			"jobs/jobReference/jobId,jobs/jobReference",
			[]string{"jobs", "jobs/jobReference", "jobs/jobReference/jobId", "jobs/jobReference/location", "jobs/jobReference/projectId"}},
		{"get", http.MethodGet, jobPath, "jobReference/jobId,user_email,status",
			[]string{"jobReference", "jobReference/jobId", "status", "status/state", "user_email"}},
		{"get, everything below a star", http.MethodGet, jobPath, "status(*)", []string{"status", "status/state"}},
		{"cancel", http.MethodPost, jobPath[:strings.Index(jobPath, "?")] + "/cancel?location=" + job.Location(), "kind,job/status/state",
			[]string{"job", "job/status", "job/status/state", "kind"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := f.call(t, tc.method, tc.path, tc.fields)
			if status != http.StatusOK {
				t.Fatalf("%s %s with fields %s: %d\n%s", tc.method, tc.path, tc.fields, status, clip(body))
			}
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, memberPaths(v)); diff != "" {
				t.Errorf("members answered with fields %s (-want +got):\n%s", tc.fields, diff)
			}
		})
	}
}

// TestJobsAPIRefusesBadFields checks that a selection naming what the
// answer does not have, or not parsing, is refused as Google refuses it,
// and that a refused jobs.cancel cancels nothing.
func TestJobsAPIRefusesBadFields(t *testing.T) {
	f := newAPIFixture(t)
	project, running := f.busiest(t)
	job := running[len(running)-1]
	list := "projects/" + project + "/jobs?allUsers=true"
	cancel := "projects/" + project + "/jobs/" + job.ID() + "/cancel?location=" + job.Location()
	for _, tc := range []struct {
		method, path, fields, bad string
	}{
		{http.MethodGet, list, "jobs(id,nosuch)", "nosuch"},
		{http.MethodGet, list, "jobs/id/more", "more"},
		{http.MethodGet, list, "jobs/status(state,errorResult/nosuch)", "nosuch"},
		{http.MethodGet, list, "id", "id"}, // a job's field, not the list's
		{http.MethodGet, list, "jobs(id", "jobs(id"},
		{http.MethodGet, list, "jobs)", "jobs)"},
		{http.MethodGet, list, "jobs/", "jobs/"},
		{http.MethodGet, list, "jobs,,nextPageToken", "jobs,,nextPageToken"},
		{http.MethodGet, list, "jobs( id)", "jobs( id)"},
		{http.MethodPost, cancel, "job/status/nosuch", "nosuch"},
	} {
		status, body := f.call(t, tc.method, tc.path, tc.fields)
		var got struct {
			Error struct {
				Code    int
				Message string
				Errors  []map[string]string
			}
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("fields %s: %v\n%s", tc.fields, err, clip(body))
		}
		msg := "Invalid field selection " + tc.bad
		want := []map[string]string{{"message": msg, "domain": "global", "reason": "invalidParameter", "location": "fields", "locationType": "parameter"}}
		if status != http.StatusBadRequest || got.Error.Message != msg || !cmp.Equal(got.Error.Errors, want) {
			t.Errorf("%s %s with fields %s: %d %s; want 400 %q with %v", tc.method, tc.path, tc.fields, status, clip(body), msg, want)
		}
	}
	key := events.JobKey{Project: project, Location: job.Location(), JobID: job.ID()}
	for _, d := range describeEntries(f.generate(time.Minute), key) {
		if strings.Contains(d, "cancel") {
			t.Errorf("a jobs.cancel refused for its fields cancelled %s: %s", key, d)
		}
	}
}

// call makes a request of the fixture's API with a fields parameter.
func (f *apiFixture) call(t *testing.T, method, path, fields string) (int, []byte) {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	req, err := http.NewRequest(method, f.url+path+sep+"fields="+url.QueryEscape(fields), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// memberPaths lists the paths (a/b) of the members of v's objects, those
// of every element of an array under the array's path, sorted.
func memberPaths(v any) []string {
	seen := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, m := range v {
				seen[prefix+k] = true
				walk(prefix+k+"/", m)
			}
		case []any:
			for _, e := range v {
				walk(prefix, e)
			}
		}
	}
	walk("", v)
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
