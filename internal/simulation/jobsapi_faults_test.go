package simulation_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/googleapi"

	"github.com/bqobserver/bqobserver/internal/simulation"
)

// statusOf is the HTTP status a call ended with: 200 without an error.
func statusOf(err error) int {
	var gerr *googleapi.Error
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &gerr):
		return gerr.Code
	}
	return -1
}

// apiErr is an error answer as it comes over the wire.
type apiErr struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Errors  []struct {
			Message, Domain, Reason string
		} `json:"errors"`
		Status string `json:"status"`
	} `json:"error"`
}

// rawGet calls path on the fixture's API and decodes an error answer.
func (f *apiFixture) rawGet(t *testing.T, path string) (int, apiErr) {
	t.Helper()
	resp, err := http.Get(f.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var e apiErr
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("GET %s: %s with a body that is not an error: %v\n%s", path, resp.Status, err, clip(body))
		}
	}
	return resp.StatusCode, e
}

// wantError is an error answer's code, reason and status; its message is
// checked apart.
type wantError struct {
	Code   int
	Reason string
	Domain string
	Status string
}

func errorOf(e apiErr) wantError {
	w := wantError{Code: e.Error.Code, Status: e.Error.Status}
	if len(e.Error.Errors) == 1 {
		w.Reason, w.Domain = e.Error.Errors[0].Reason, e.Error.Errors[0].Domain
		if e.Error.Errors[0].Message != e.Error.Message {
			w.Reason += " (with another message)"
		}
	}
	return w
}

// TestJobsAPIInjectsFaults pins the shape of each injected error on the
// wire, and that FailNext fails exactly the calls it names. BigQuery's
// error table: "rateLimitExceeded: This error returns if your project
// exceeds a short-term rate limit by sending too many requests too
// quickly", "backendError: 500, 503 or 504"
// (https://cloud.google.com/bigquery/docs/error-messages).
func TestJobsAPIInjectsFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  simulation.Fault
		status int // Faults.RateLimitStatus
		want   wantError
		msg    string
	}{
		{"rate limit", simulation.FaultRateLimit, 0, wantError{429, "rateLimitExceeded", "global", "RESOURCE_EXHAUSTED"},
			"Exceeded rate limits: too many api requests per user per method for this user_method. For more information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas"},
		{"rate limit as a 403", simulation.FaultRateLimit, 403, wantError{403, "rateLimitExceeded", "global", "PERMISSION_DENIED"},
			"Exceeded rate limits: too many api requests per user per method for this user_method. For more information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas"},
		{"backend error", simulation.FaultBackend, 0, wantError{503, "backendError", "global", "UNAVAILABLE"},
			"Error encountered during execution. Retrying may solve the problem."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := apiConfig()
			cfg.Faults.RateLimitStatus = tc.status
			f := newAPIFixtureWith(t, cfg, time.Minute)
			p, other := f.org.Projects()[0], f.org.Projects()[1]
			f.org.JobsAPI().FailNext(p, simulation.MethodList, 2, tc.fault)
			list := "projects/" + p + "/jobs?allUsers=true"
			var got []int
			for _, path := range []string{"projects/" + other + "/jobs", "projects/" + p + "/jobs/x?location=US", list, list, list} {
				code, e := f.rawGet(t, path)
				got = append(got, code)
				if code == tc.want.Code {
					if diff := cmp.Diff(tc.want, errorOf(e)); diff != "" || e.Error.Message != tc.msg {
						t.Errorf("GET %s: error (-want +got):\n%s\nmessage %q, want %q", path, diff, e.Error.Message, tc.msg)
					}
				}
			}
			// Another project and another method pass; the two lists fail.
			if diff := cmp.Diff([]int{200, 404, tc.want.Code, tc.want.Code, 200}, got); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
		})
	}
}

// TestJobsAPIErrorsReachTheOfficialClient checks that the official client
// surfaces every error as a *googleapi.Error with its code and reason: at
// once for those it does not retry, after its retries (cut short here by
// the context) for rateLimitExceeded and 5xx.
func TestJobsAPIErrorsReachTheOfficialClient(t *testing.T) {
	f := newAPIFixture(t)
	api := f.org.JobsAPI()
	p := f.org.Projects()[2]
	for _, tc := range []struct {
		name   string
		setup  func()
		call   func(ctx context.Context) error
		code   int
		reason string
	}{
		{"unknown job", func() {}, func(ctx context.Context) error {
			_, err := f.client.JobFromProject(ctx, p, "no-such-job", "US")
			return err
		}, 404, "notFound"},
		{"get denied", func() { api.DenyMethod(p, simulation.MethodGet, true) }, func(ctx context.Context) error {
			_, err := f.client.JobFromProject(ctx, p, "no-such-job", "US")
			return err
		}, 403, "accessDenied"},
		{"list rate limited", func() { api.FailNext(p, simulation.MethodList, 1000, simulation.FaultRateLimit) }, func(ctx context.Context) error {
			it := f.client.Jobs(ctx)
			it.ProjectID, it.AllUsers = p, true
			_, err := it.Next()
			return err
		}, 429, "rateLimitExceeded"},
		{"get backend error", func() { api.FailNext(p, simulation.MethodGet, 1000, simulation.FaultBackend) }, func(ctx context.Context) error {
			_, err := f.client.JobFromProject(ctx, p, "no-such-job", "US")
			return err
		}, 503, "backendError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := tc.call(ctx)
			var gerr *googleapi.Error
			if !errors.As(err, &gerr) || gerr.Code != tc.code || len(gerr.Errors) != 1 || gerr.Errors[0].Reason != tc.reason {
				t.Errorf("error %v (%T); want a *googleapi.Error %d %s", err, err, tc.code, tc.reason)
			}
		})
	}
}

// TestJobsAPIClientRetriesThroughARateLimit checks that the official
// client's own retry gets a list through one rateLimitExceeded, and that
// the API counts both calls and both answers.
func TestJobsAPIClientRetriesThroughARateLimit(t *testing.T) {
	f := newAPIFixture(t)
	p := f.org.Projects()[0]
	api := f.org.JobsAPI()
	api.FailNext(p, simulation.MethodList, 1, simulation.FaultRateLimit)
	if js := f.list(t, p, bigquery.Running, 1000); len(js) == 0 {
		t.Fatal("no running jobs listed")
	}
	if got := api.Calls()[simulation.Call{Method: simulation.MethodList, Project: p}]; got != 2 {
		t.Errorf("jobs.list calls on %s = %d, want 2", p, got)
	}
	got := map[int]int{}
	for a, n := range api.Answers() {
		if a.Method == simulation.MethodList && a.Project == p {
			got[a.Status] += n
		}
	}
	if diff := cmp.Diff(map[int]int{429: 1, 200: 1}, got); diff != "" {
		t.Errorf("answers to jobs.list on %s by status (-want +got):\n%s", p, diff)
	}
}

// TestJobsAPIFaultShares checks that the shares of injected errors are
// what they are set to, and the same for the same seed and calls.
func TestJobsAPIFaultShares(t *testing.T) {
	const calls = 2000
	statuses := func() map[int]int {
		f := newAPIFixtureWith(t, apiConfig(), time.Minute)
		if err := f.org.JobsAPI().SetFaults(simulation.Faults{RateLimitShare: 0.2, BackendErrorShare: 0.05}); err != nil {
			t.Fatal(err)
		}
		got := map[int]int{}
		for range calls {
			code, _ := f.rawGet(t, "projects/"+f.org.Projects()[0]+"/jobs/no-such-job?location=US")
			got[code]++
		}
		return got
	}
	first, second := statuses(), statuses()
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("the same calls met different faults (-first +second):\n%s", diff)
	}
	for code, share := range map[int]float64{429: 0.2, 503: 0.05, 404: 0.75} {
		if got := float64(first[code]) / calls; got < share*0.8 || got > share*1.2 {
			t.Errorf("share of %d answers %.3f, want %.2f", code, got, share)
		}
	}
	if err := newAPIFixtureWith(t, apiConfig(), 0).org.JobsAPI().SetFaults(simulation.Faults{RateLimitShare: 2}); err == nil {
		t.Error("SetFaults accepted a share of 2")
	}
}

// TestJobsAPIDeniesPerProjectAndMethod switches denials on and off at run
// time: each denied call gets BigQuery's 403 naming the permission it
// lacks, other methods and projects are served.
func TestJobsAPIDeniesPerProjectAndMethod(t *testing.T) {
	f := newAPIFixture(t)
	api := f.org.JobsAPI()
	p, q := f.org.Projects()[0], f.org.Projects()[1]
	listAll := "projects/" + p + "/jobs?allUsers=true"
	own := "projects/" + p + "/jobs"
	get := "projects/" + p + "/jobs/no-such-job?location=EU"
	other := "projects/" + q + "/jobs?allUsers=true"
	listAllDenied := "Access Denied: Project " + p + ": User does not have bigquery.jobs.listAll permission in project " + p + "."
	ownDenied := "Access Denied: Project " + p + ": User does not have bigquery.jobs.list permission in project " + p + "."
	job := p + ":EU.no-such-job"
	getDenied := "Access Denied: Job " + job + ": User does not have bigquery.jobs.get permission for job " + job + "."
	for _, tc := range []struct {
		name  string
		setup func()
		want  map[string]string // path: "" for served, the 403 message for denied
	}{
		{"get denied", func() { api.DenyMethod(p, simulation.MethodGet, true) }, map[string]string{
			listAll: "", own: "", other: "", get: getDenied}},
		{"project denied", func() { api.Deny(p, true) }, map[string]string{
			listAll: listAllDenied, own: ownDenied, other: "", get: getDenied}},
		{"project allowed, get still denied", func() { api.Deny(p, false) }, map[string]string{
			listAll: "", own: "", other: "", get: getDenied}},
		{"all allowed", func() { api.DenyMethod(p, simulation.MethodGet, false) }, map[string]string{
			listAll: "", own: "", other: "", get: ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			got := map[string]string{}
			for path := range tc.want {
				code, e := f.rawGet(t, path)
				switch {
				case code == 403 && cmp.Equal(errorOf(e), wantError{403, "accessDenied", "global", "PERMISSION_DENIED"}):
					got[path] = e.Error.Message
				case code != 403:
					got[path] = ""
				default:
					got[path] = "malformed 403"
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("denials (-want +got):\n%s", diff)
			}
		})
	}
}
