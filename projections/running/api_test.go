package running

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/fakeclock"
	"github.com/bqobserver/bqobserver/internal/testutil/golden"
)

// scenario is a small organization at t0+1h: queued, running, stale and
// finished jobs, every one appended to the log and fed to the projection as
// ingest would.
func scenario(t *testing.T) (*Projection, *fakeclock.Clock) {
	t.Helper()
	l := newLog(t)
	p, c := newProjection(t, l, t0.Add(time.Hour), Config{StaleAfter: 30 * time.Minute})
	var evs []events.Event

	etl := jobStory("acme-etl", "US", "bquxjob_merge_1")
	evs = append(evs,
		etl.inserted(t0.Add(20*time.Minute), events.StatePending, events.Facts{Principal: "etl@acme-etl.iam.gserviceaccount.com",
			JobType: events.JobTypeQuery, StatementType: "MERGE", Priority: "BATCH", Reservation: "admin:US.etl",
			Query:  "MERGE `acme-etl.core.customers` T USING `acme-etl.staging.delta` S ON T.id = S.id WHEN MATCHED THEN UPDATE SET email = S.email",
			Labels: map[string]string{"dag": "orders_daily", "env": "prod"}, ReferencedTables: []string{"acme-etl.staging.delta"},
			DestinationTable: "acme-etl.core.customers"}),
		etl.started(t0.Add(21*time.Minute)),
		etl.progress(t0.Add(50*time.Minute), 3_600_000, 5<<30))

	bi := jobStory("acme-bi", "EU", "looker_42")
	evs = append(evs, bi.inserted(t0.Add(55*time.Minute), events.StatePending, events.Facts{Principal: "ann@acme.example",
		JobType: events.JobTypeQuery, StatementType: "SELECT", Priority: "INTERACTIVE",
		Query: "SELECT campaign, COUNT(*) FROM `acme-bi.ads.clicks` -- " + strings.Repeat("padding ", 140) + "end", QueryTruncated: true}))

	quiet := jobStory("acme-bi", "US", "forgotten_load")
	evs = append(evs, quiet.inserted(t0.Add(5*time.Minute), events.StateRunning, events.Facts{Principal: "bob@acme.example",
		JobType: events.JobTypeLoad, DestinationTable: "acme-bi.raw.events", SourceURIs: []string{"gs://acme/raw/*.json"}}))

	done := jobStory("acme-etl", "US", "finished_copy")
	failed := done.completed(t0.Add(40 * time.Minute))
	failed.Error = &events.JobError{Code: "accessDenied", Message: "Access Denied: Table acme-etl:core.secret"}
	evs = append(evs, done.inserted(t0.Add(30*time.Minute), events.StateRunning, events.Facts{Principal: "ann@acme.example",
		JobType: events.JobTypeCopy, SourceTables: []string{"acme-etl.core.secret"}, DestinationTable: "acme-etl.core.copy"}), failed)

	if err := l.Append(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	mustApply(t, p, evs...)
	p.store.sweep(c.Now())
	return p, c
}

// goldenResponse compares a response with testdata/name.golden.json, semantically:
// times are written relative to t0 (so the files do not change as the
// calendar moves) and cursors are opaque.
func goldenResponse(t *testing.T, name string, w *http.Response, body []byte) {
	t.Helper()
	var decoded any
	if err := json.Unmarshal(body, &decoded); err != nil {
		t.Fatalf("%s: body is not JSON: %v\n%s", name, err, body)
	}
	got := map[string]any{
		"status":       w.StatusCode,
		"content_type": w.Header.Get("Content-Type"),
		"body":         normalize(decoded),
	}
	if ra := w.Header.Get("Retry-After"); ra != "" {
		got["retry_after"] = ra
	}
	golden.JSON(t, filepath.Join("testdata", name+".golden.json"), got)
}

// normalize rewrites times as offsets from t0, and cursors and stream ids
// as placeholders.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "next_cursor" && e != "" {
				x[k] = "<cursor>"
				continue
			}
			if k == "stream_id" && e != "" {
				x[k] = "<stream_id>" // its epoch is random
				continue
			}
			x[k] = normalize(e)
		}
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
	case string:
		if ts, ok := sinceT0(x); ok {
			return ts
		}
		return stamps.ReplaceAllStringFunc(x, func(s string) string {
			ts, _ := sinceT0(s)
			return cmp.Or(ts, s)
		})
	}
	return v
}

// sinceT0 rewrites a time within a year of t0 as an offset from t0; t0
// follows the clock, so only the scenario's times are relative to it, and a
// fixed time (an example in a message) stays as it is.
func sinceT0(s string) (string, bool) {
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || ts.Sub(t0).Abs() > 365*24*time.Hour {
		return "", false
	}
	return "t0+" + ts.Sub(t0).String(), true
}

// stamps are the times written within a text, such as a problem's detail.
var stamps = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)

func TestAPIGolden(t *testing.T) {
	p, _ := scenario(t)
	srv := asAdmin(p.Handler())
	tests := []struct{ name, path string }{
		{"list", "/api/v1/jobs"},
		{"list-filtered", "/api/v1/jobs?project=ACME-ETL&state=running&label=env=prod&q=customers&sort=-slot_ms"},
		{"list-first-page", "/api/v1/jobs?sort=created&limit=2"},
		{"list-bad", "/api/v1/jobs?limit=5000&sort=size&colour=red"},
		{"detail-running", "/api/v1/jobs/acme-etl/US/bquxjob_merge_1"},
		{"detail-preview-query", "/api/v1/jobs/acme-bi/EU/looker_42"},
		{"detail-finished", "/api/v1/jobs/acme-etl/US/finished_copy"},
		{"detail-unknown", "/api/v1/jobs/acme-etl/US/never_seen"},
		{"summary", "/api/v1/summary"},
		{"legacy", "/_ah/get-handlers/v1/jobs?get_param=value"},
		{"unknown-endpoint", "/api/v1/nothing"},
		{"healthz", "/healthz"},
		{"readyz", "/readyz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := get(t, srv, tt.path)
			goldenResponse(t, tt.name, w.Result(), w.Body.Bytes())
		})
	}
}

// TestListSecondPage follows the cursor of the first page, which the golden
// file cannot hold.
// TestListStreamID: a page names the newest stream event it reflects, the
// ring's head as the page was read, so that a client that buffered the
// stream meanwhile applies only what came after it.
func TestListStreamID(t *testing.T) {
	p, _ := scenario(t)
	var pg struct {
		StreamID string `json:"stream_id"`
	}
	if err := json.Unmarshal(get(t, asAdmin(p.Handler()), "/api/v1/jobs").Body.Bytes(), &pg); err != nil {
		t.Fatal(err)
	}
	head := p.changes.current()
	if want := p.changes.id(head); pg.StreamID != want || head == 0 {
		t.Errorf("stream_id %q, want %q (the head of the ring, after the scenario's %d changes)", pg.StreamID, want, head)
	}
}

func TestListSecondPage(t *testing.T) {
	p, _ := scenario(t)
	var first pageWire
	if err := json.Unmarshal(get(t, asAdmin(p.Handler()), "/api/v1/jobs?sort=created&limit=2").Body.Bytes(), &first); err != nil {
		t.Fatal(err)
	}
	w := get(t, asAdmin(p.Handler()), "/api/v1/jobs?sort=created&limit=2&cursor="+first.NextCursor)
	goldenResponse(t, "list-second-page", w.Result(), w.Body.Bytes())
}

func TestNotReady(t *testing.T) {
	l := newLog(t)
	p, err := New(Config{RetryAfter: 7 * time.Second}, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := asAdmin(p.Handler())
	for _, step := range []struct {
		name    string
		do      func()
		jobs    int
		readyz  int
		healthz int
	}{
		{"rebuilding", func() {}, http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusOK},
		{"rebuilt, feed not attached", func() {
			if err := p.Rebuild(t.Context()); err != nil {
				t.Fatal(err)
			}
		}, http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusOK},
		{"live", p.MarkLive, http.StatusOK, http.StatusOK, http.StatusOK},
	} {
		step.do()
		for path, want := range map[string]int{"/api/v1/jobs": step.jobs, "/api/v1/summary": step.jobs, "/api/v1/stream": step.jobs,
			"/api/v1/jobs/p/US/j": step.jobs, "/_ah/get-handlers/v1/jobs": step.jobs, "/readyz": step.readyz, "/healthz": step.healthz,
			"/api/v1/openapi.json": http.StatusOK} {
			if want == http.StatusOK && path == "/api/v1/stream" {
				continue // a stream that is served does not end
			}
			if want == http.StatusOK && path == "/api/v1/jobs/p/US/j" {
				want = http.StatusNotFound
			}
			w := get(t, h, path)
			if w.Code != want {
				t.Errorf("%s: GET %s = %d, want %d", step.name, path, w.Code, want)
			}
			if w.Code == http.StatusServiceUnavailable && w.Header().Get("Retry-After") != "7" {
				t.Errorf("%s: GET %s: Retry-After %q, want 7", step.name, path, w.Header().Get("Retry-After"))
			}
		}
	}
	if w := get(t, h, "/healthz"); !bytes.Contains(w.Body.Bytes(), []byte(`"ok"`)) {
		t.Errorf("healthz body %s", w.Body)
	}
}

// TestMethodNotAllowed: a method an endpoint does not serve is 405 with
// Allow, an unknown path 404, both as problem documents.
func TestMethodNotAllowed(t *testing.T) {
	p, _ := newProjection(t, nil, t0, Config{})
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"POST", "/api/v1/jobs", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"POST", "/api/v1/summary", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"DELETE", "/_ah/get-handlers/v1/jobs", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"PUT", "/api/v1/jobs/p/US/j:cancel", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{"POST", "/api/v1/nothing", http.StatusNotFound, ""},
		{"GET", "/api/v2/jobs", http.StatusNotFound, ""},
	} {
		w := httptest.NewRecorder()
		asAdmin(p.Handler()).ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		var pr problem
		if err := json.Unmarshal(w.Body.Bytes(), &pr); err != nil || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %s %q, want a problem document (%v)", tc.method, tc.path, w.Header().Get("Content-Type"), w.Body, err)
		}
		if w.Code != tc.status || pr.Status != tc.status || w.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s = %d (document %d), Allow %q; want %d, Allow %q", tc.method, tc.path, w.Code, pr.Status, w.Header().Get("Allow"), tc.status, tc.allow)
		}
	}
}

func TestDetailLogUnavailable(t *testing.T) {
	p, _ := newProjection(t, nil, t0, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	w := httptest.NewRecorder()
	asAdmin(p.Handler()).ServeHTTP(w, httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/v1/jobs/p/US/j", nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("detail with the log unreachable: %d %v, want 503 with Retry-After", w.Code, w.Header())
	}
}
