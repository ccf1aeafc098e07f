package running

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	httpproblem "github.com/bqobserver/bqobserver/internal/problem"
	"github.com/bqobserver/bqobserver/projections/access"
)

// hangingLog is an event log that answers the rebuild at once and then
// never answers a read of a job's events until the caller gives up, as
// Bigtable does when it is unreachable (its client retries until the
// deadline).
type hangingLog struct {
	eventLog
}

func (hangingLog) OpenJobs(context.Context, func(events.JobKey) error) error { return nil }

func (hangingLog) JobEvents(ctx context.Context, _ events.JobKey) ([]events.Event, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("reading: %w: %w", events.ErrUnavailable, ctx.Err())
}

// TestRequestDeadline checks that a request that reads the log (a job's
// detail; a cancel request, before it calls BigQuery) answers 503 with
// Retry-After, as a problem document, once RequestTimeout has passed,
// rather than waiting for the log.
func TestRequestDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	p, err := New(Config{RequestTimeout: timeout, RetryAfter: 7 * time.Second}, hangingLog{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	p.MarkLive()
	for _, tc := range []struct {
		name string
		do   func() *httptest.ResponseRecorder
		path string
	}{
		{"a job's detail", func() *httptest.ResponseRecorder { return get(t, asAdmin(p.Handler()), "/api/v1/jobs/acme/US/job_1") },
			"/api/v1/jobs/acme/US/job_1"},
		{"a cancel request", func() *httptest.ResponseRecorder {
			return post(t, p.Handler(), access.Anonymous(), "/api/v1/jobs/acme/US/job_1:cancel", "")
		}, "/api/v1/jobs/acme/US/job_1:cancel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			w := tc.do()
			took := time.Since(start)
			if took < timeout || took > timeout+5*time.Second {
				t.Errorf("answered after %s, want shortly after the %s deadline", took, timeout)
			}
			var got problem
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			want := problem{Document: httpproblem.Document{Type: "about:blank", Title: "Service Unavailable", Status: http.StatusServiceUnavailable,
				Detail: "reading the job's events: the event log did not answer within 300ms", Instance: tc.path}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("problem (-want +got):\n%s", diff)
			}
			if got := []string{fmt.Sprint(w.Code), w.Header().Get("Retry-After"), w.Header().Get("Content-Type")}; !cmp.Equal(got, []string{"503", "7", "application/problem+json"}) {
				t.Errorf("status, Retry-After, Content-Type = %v, want [503 7 application/problem+json]", got)
			}
		})
	}
}

// hangingEnrichment is enrichment whose diagnostics never come until the
// caller gives up, as when its registry's Bigtable is unreachable.
type hangingEnrichment struct{ Enrichment }

func (hangingEnrichment) Diagnostics(ctx context.Context) (*Diagnostics, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("reading the recorded denials: %w: %w", events.ErrUnavailable, ctx.Err())
}

// TestDiagnosticsDeadline checks that enrichment's diagnostics, which read
// its registry in the log's Bigtable table, answer 503 with Retry-After
// once RequestTimeout has passed, like every request that reads Bigtable.
func TestDiagnosticsDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	p, err := New(Config{RequestTimeout: timeout, RetryAfter: 7 * time.Second}, hangingLog{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.AttachEnrichment(hangingEnrichment{})
	start := time.Now()
	w := get(t, asAdmin(p.Handler()), "/api/v1/diagnostics")
	if took := time.Since(start); took < timeout || took > timeout+5*time.Second {
		t.Errorf("answered after %s, want shortly after the %s deadline", took, timeout)
	}
	var got problem
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	want := problem{Document: httpproblem.Document{Type: "about:blank", Title: "Service Unavailable", Status: http.StatusServiceUnavailable,
		Detail: "reading enrichment's diagnostics: the event log did not answer within 300ms", Instance: "/api/v1/diagnostics"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problem (-want +got):\n%s", diff)
	}
	if got := []string{fmt.Sprint(w.Code), w.Header().Get("Retry-After")}; !cmp.Equal(got, []string{"503", "7"}) {
		t.Errorf("status, Retry-After = %v, want [503 7]", got)
	}
}
