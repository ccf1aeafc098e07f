package running

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/projections/access"
)

// TestReadyWhileABackendIsUnreachable reports the event log unreachable,
// missing and back, and then Pub/Sub unreachable and back: /readyz says
// the service is degraded, with the reason, while the latest check of
// either failed, and the list keeps answering from memory.
func TestReadyWhileABackendIsUnreachable(t *testing.T) {
	p, _ := newProjection(t, nil, t0, Config{})
	h := asAdmin(p.Handler())
	type answer struct {
		Readyz   int
		Status   string
		LogError string
		PSError  string
		List     int
	}
	ask := func() answer {
		w := get(t, h, "/readyz")
		var body readyJSON
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("/readyz body %s: %v", w.Body, err)
		}
		if body.EventLog.Reachable == (body.EventLog.Error != "") || body.PubSub.Reachable == (body.PubSub.Error != "") {
			t.Errorf("/readyz body %s: reachable contradicts error", w.Body)
		}
		return answer{Readyz: w.Code, Status: body.Status, LogError: body.EventLog.Error, PSError: body.PubSub.Error,
			List: get(t, h, "/api/v1/jobs").Code}
	}
	ok := answer{Readyz: http.StatusOK, Status: readyOK, List: http.StatusOK}
	for _, step := range []struct {
		name   string
		report func()
		want   answer
	}{
		{"answers", func() { p.ReportLog(t.Context(), nil); p.ReportPubSub(t.Context(), nil) }, ok},
		{"log unreachable", func() {
			p.ReportLog(t.Context(), errors.New("reading table bqobserver-events: context deadline exceeded"))
		}, answer{Readyz: http.StatusOK, Status: readyDegraded, List: http.StatusOK,
			LogError: "the event log does not answer: reading table bqobserver-events: context deadline exceeded"}},
		{"its table missing", func() { p.ReportLog(t.Context(), errors.New("table bqobserver-events is missing")) },
			answer{Readyz: http.StatusOK, Status: readyDegraded, List: http.StatusOK,
				LogError: "the event log does not answer: table bqobserver-events is missing"}},
		{"log answers again", func() { p.ReportLog(t.Context(), nil) }, ok},
		{"Pub/Sub unreachable", func() {
			p.ReportPubSub(t.Context(), errors.New("looking up topic bq-audit: rpc error: code = Unavailable"))
		}, answer{Readyz: http.StatusOK, Status: readyDegraded, List: http.StatusOK,
			PSError: "Pub/Sub does not answer: looking up topic bq-audit: rpc error: code = Unavailable"}},
		{"both unreachable", func() { p.ReportLog(t.Context(), errors.New("connection refused")) },
			answer{Readyz: http.StatusOK, Status: readyDegraded, List: http.StatusOK,
				LogError: "the event log does not answer: connection refused",
				PSError:  "Pub/Sub does not answer: looking up topic bq-audit: rpc error: code = Unavailable"}},
		{"both answer again", func() { p.ReportLog(t.Context(), nil); p.ReportPubSub(t.Context(), nil) }, ok},
	} {
		step.report()
		if diff := cmp.Diff(step.want, ask()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", step.name, diff)
		}
	}
}

// TestReadyRedacted: /readyz, open to anyone, tells a caller who may not
// see every job (an anonymous probe, an own caller) the state and which
// backend does not answer, but not how many jobs the organization runs nor
// the errors behind it, which name its resources.
func TestReadyRedacted(t *testing.T) {
	p, _ := newProjection(t, nil, t0, Config{})
	p.ReportLog(t.Context(), errors.New("table projects/acme-ops/instances/obs/tables/bqobserver-events is missing"))
	p.ReportDetached(t.Context(), []string{"bqobserver-ingest"})
	own := access.Principal{Email: "carol@partner.example", Role: access.RoleOwn, Method: access.ModeIAP}
	for name, h := range map[string]http.Handler{"anonymous": as(access.Principal{}, p.Handler()), "own": as(own, p.Handler())} {
		body := get(t, h, "/readyz").Body.String()
		for _, secret := range []string{`"jobs"`, "acme-ops", "bqobserver-ingest"} {
			if strings.Contains(body, secret) {
				t.Errorf("/readyz tells an %s caller %s: %s", name, secret, body)
			}
		}
		if !strings.Contains(body, `"status":"degraded"`) || !strings.Contains(body, `"reachable":false`) {
			t.Errorf("/readyz does not tell an %s caller that the log does not answer: %s", name, body)
		}
	}
	if body := get(t, asAdmin(p.Handler()), "/readyz").Body.String(); !strings.Contains(body, "acme-ops") || !strings.Contains(body, `"jobs":`) {
		t.Errorf("/readyz does not tell an admin why: %s", body)
	}
}
