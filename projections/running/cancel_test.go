package running

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/cancel"
	"github.com/bqobserver/bqobserver/projections/access"
)

// recordingCanceller stands in for the canceller: it answers err and
// records the requests it was given.
type recordingCanceller struct {
	err  error
	reqs []cancel.Request
}

func (c *recordingCanceller) Cancel(_ context.Context, r cancel.Request) (events.Event, error) {
	c.reqs = append(c.reqs, r)
	ev := events.Event{ID: "cancel-1", Kind: events.KindCancelRequested, Job: r.Job, Time: t0, State: events.StateRunning,
		Facts: events.Facts{CancelRequestedBy: r.By, CancelReason: r.Reason, CancelAnswer: "RUNNING"}, Source: events.Source{Format: "operator", Method: "jobs.cancel"}}
	return ev, c.err
}

// post sends a POST with body to h as caller.
func post(t *testing.T, h http.Handler, caller access.Principal, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	as(caller, h).ServeHTTP(w, r)
	return w
}

// TestCancelEndpoint: only admins cancel, only jobs that exist and are not
// finished, and BigQuery's answer decides the status.
func TestCancelEndpoint(t *testing.T) {
	const alices = "/api/v1/jobs/acme-bi/US/alices_query:cancel"
	key := events.JobKey{Project: "acme-bi", Location: "US", JobID: "alices_query"}
	refused := fmt.Errorf("cancelling %s: %w: denied", key, cancel.ErrRefused)
	for _, tc := range []struct {
		name    string
		caller  access.Principal
		path    string
		body    string
		err     error
		status  int
		request *cancel.Request // what the canceller was asked, if anything
	}{
		{name: "admin", caller: admin, path: alices, body: `{"reason":"scans a petabyte"}`, status: http.StatusAccepted,
			request: &cancel.Request{Job: key, By: "carol@acme.example", Reason: "scans a petabyte"}},
		{name: "admin without a body", caller: admin, path: alices, status: http.StatusAccepted,
			request: &cancel.Request{Job: key, By: "carol@acme.example"}},
		{name: "anonymous admin", caller: access.Anonymous(), path: alices, body: `{}`, status: http.StatusAccepted,
			request: &cancel.Request{Job: key, By: "anonymous"}},
		{name: "viewer", caller: viewer, path: alices, status: http.StatusForbidden},
		{name: "viewer with show_queries", caller: dba, path: alices, status: http.StatusForbidden},
		{name: "own, of its own job", caller: ownAlice, path: alices, status: http.StatusForbidden},
		{name: "no role", caller: noRole, path: alices, status: http.StatusForbidden},
		{name: "unknown job", caller: admin, path: "/api/v1/jobs/acme-bi/US/nothing:cancel", status: http.StatusNotFound},
		{name: "finished job", caller: admin, path: "/api/v1/jobs/acme-etl/EU/finished:cancel", status: http.StatusConflict},
		{name: "not a cancel", caller: admin, path: "/api/v1/jobs/acme-bi/US/alices_query", status: http.StatusNotFound},
		{name: "unknown member", caller: admin, path: alices, body: `{"reason":"x","force":true}`, status: http.StatusBadRequest},
		{name: "not JSON", caller: admin, path: alices, body: `reason=x`, status: http.StatusBadRequest},
		{name: "two documents", caller: admin, path: alices, body: `{} {}`, status: http.StatusBadRequest},
		{name: "reason too long", caller: admin, path: alices, body: `{"reason":"` + strings.Repeat("x", 1025) + `"}`, status: http.StatusBadRequest},
		{name: "body too large", caller: admin, path: alices, body: `{"reason":"` + strings.Repeat(`\u0078`, 2000) + `"}`, status: http.StatusRequestEntityTooLarge},
		{name: "BigQuery refuses", caller: admin, path: alices, err: refused, status: http.StatusBadGateway,
			request: &cancel.Request{Job: key, By: "carol@acme.example"}},
		{name: "BigQuery unavailable", caller: admin, path: alices, err: fmt.Errorf("x: %w", events.ErrUnavailable), status: http.StatusServiceUnavailable,
			request: &cancel.Request{Job: key, By: "carol@acme.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, now := visibilityProjection(t)
			f := jobStory("acme-etl", "EU", "finished")
			if err := p.log.(*events.Log).Append(t.Context(), []events.Event{f.inserted(now.Add(-10*time.Minute), events.StateRunning, events.Facts{}), f.completed(now)}); err != nil {
				t.Fatal(err)
			}
			c := &recordingCanceller{err: tc.err}
			p.AttachCanceller(c)
			w := post(t, p.Handler(), tc.caller, tc.path, tc.body)
			if w.Code != tc.status {
				t.Errorf("POST %s: %d %s, want %d", tc.path, w.Code, w.Body, tc.status)
			}
			var want []cancel.Request
			if tc.request != nil {
				want = []cancel.Request{*tc.request}
			}
			if diff := cmp.Diff(want, c.reqs); diff != "" {
				t.Errorf("cancel requests (-want +got):\n%s", diff)
			}
			if tc.status != http.StatusAccepted {
				if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("a refusal answered as %s, want a problem document", ct)
				}
				return
			}
			var got cancelJSON
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.Key != key || got.Event.Kind != events.KindCancelRequested {
				t.Errorf("accepted: %s (%v), want the job's key and the cancel event", w.Body, err)
			}
		})
	}
}

// Without a canceller the endpoint says that it cannot cancel.
func TestCancelEndpointWithoutCanceller(t *testing.T) {
	p, _ := visibilityProjection(t)
	w := post(t, p.Handler(), admin, "/api/v1/jobs/acme-bi/US/alices_query:cancel", "")
	if w.Code != http.StatusNotImplemented {
		t.Errorf("POST without a canceller: %d %s, want 501", w.Code, w.Body)
	}
}
