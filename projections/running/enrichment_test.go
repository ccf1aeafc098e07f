package running

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/fakeclock"
	"github.com/bqobserver/bqobserver/projections/access"
)

// fakeEnrichment stands in for enrichment, and the BigQuery jobs API
// behind it: it answers with fixed values or a fixed error.
type fakeEnrichment struct {
	live  *Live
	diag  *Diagnostics
	err   error
	asked []events.JobKey
}

func (f *fakeEnrichment) Live(_ context.Context, k events.JobKey) (*Live, error) {
	f.asked = append(f.asked, k)
	return f.live, f.err
}

func (f *fakeEnrichment) Diagnostics(context.Context) (*Diagnostics, error) { return f.diag, f.err }

// TestDetailCarriesLive: with enrichment, a job's detail carries the
// API's live view, or why there is none; without, neither.
func TestDetailCarriesLive(t *testing.T) {
	at := t0.Add(time.Minute)
	live := &Live{ObservedAt: at, State: "RUNNING", Timeline: []TimelineSample{{ElapsedMs: 1000, SlotMs: 400, CompletedUnits: 3, ActiveUnits: 2, PendingUnits: 5}},
		Stages: []Stage{{ID: 0, Name: "S00: Input", Status: "RUNNING", ParallelInputs: events.Int64(10), CompletedParallelInputs: events.Int64(4), RecordsRead: events.Int64(1000),
			SlotMs: events.Int64(400), StartTime: at, WaitRatioAvg: 0.1, WaitRatioMax: 0.2, ComputeRatioAvg: 0.5, ComputeRatioMax: 0.9}}}
	for _, tc := range []struct {
		name      string
		enr       *fakeEnrichment
		want      *Live
		wantError string
	}{
		{"off", nil, nil, ""},
		{"live", &fakeEnrichment{live: live}, live, ""},
		{"denied", &fakeEnrichment{err: errors.New("jobs.get on project p denied")}, nil, "jobs.get on project p denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newProjection(t, nil, t0.Add(2*time.Minute), Config{})
			s := jobStory("p", "US", "j1")
			if err := p.Apply(t.Context(), s.inserted(t0, events.StateRunning, events.Facts{})); err != nil {
				t.Fatal(err)
			}
			if tc.enr != nil {
				p.AttachEnrichment(tc.enr)
			}
			w := get(t, asAdmin(p.Handler()), "/api/v1/jobs/p/US/j1")
			var got struct {
				Live      *Live  `json:"live"`
				LiveError string `json:"live_error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusOK {
				t.Fatalf("%d %v\n%s", w.Code, err, w.Body)
			}
			if diff := gocmp.Diff(got.Live, tc.want); diff != "" || got.LiveError != tc.wantError {
				t.Errorf("live (-got +want):\n%s\nerror %q, want %q", diff, got.LiveError, tc.wantError)
			}
			if tc.enr != nil && !slices.Equal(tc.enr.asked, []events.JobKey{s.key}) {
				t.Errorf("enrichment was asked about %v", tc.enr.asked)
			}
		})
	}
}

// TestDiagnosticsEndpoint answers before the list is ready, with
// enrichment's problems or, without it, none.
func TestDiagnosticsEndpoint(t *testing.T) {
	problem := Problem{Project: "p", Method: "jobs.list", Permission: "bigquery.jobs.listAll", Role: "roles/bigquery.resourceViewer",
		Fix: "Grant it.", Message: "Access Denied", Since: t0, Checked: t0.Add(time.Minute)}
	own := access.Principal{Email: "ann@example.com", Role: access.RoleOwn}
	diag := &fakeEnrichment{diag: &Diagnostics{Enrichment: true, CheckedAt: t0, Problems: []Problem{problem}}}
	for _, tc := range []struct {
		name   string
		enr    Enrichment
		caller access.Principal
		code   int
		want   *Diagnostics
	}{
		{"off", nil, access.Anonymous(), http.StatusOK, &Diagnostics{CheckedAt: t0, Problems: []Problem{}}},
		{"problems", diag, access.Anonymous(), http.StatusOK, &Diagnostics{Enrichment: true, CheckedAt: t0, Problems: []Problem{problem}}},
		{"problems, to a caller who sees only its own jobs", diag, own, http.StatusOK, &Diagnostics{Enrichment: true, CheckedAt: t0, Problems: []Problem{}}},
		{"unavailable", &fakeEnrichment{err: events.ErrUnavailable}, access.Anonymous(), http.StatusServiceUnavailable, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeclock.New(t0)
			p, err := New(Config{Now: c.Now}, newLog(t), nil) // not rebuilt: not ready
			if err != nil {
				t.Fatal(err)
			}
			if tc.enr != nil {
				p.AttachEnrichment(tc.enr)
			}
			w := get(t, as(tc.caller, p.Handler()), "/api/v1/diagnostics")
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d\n%s", w.Code, tc.code, w.Body)
			}
			if tc.want == nil {
				return
			}
			var got Diagnostics
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if diff := gocmp.Diff(&got, tc.want); diff != "" {
				t.Errorf("diagnostics (-got +want):\n%s", diff)
			}
		})
	}
}

// TestAuditLossCounts counts jobs that leave the list by reconciliation
// and jobs that enter it by an event of the jobs API, each once, whatever
// the duplicates; jobs closed or listed by audit entries are not counted.
func TestAuditLossCounts(t *testing.T) {
	p, c := newProjection(t, nil, t0.Add(time.Hour), Config{})
	api := func(e events.Event) events.Event {
		e.Source = events.Source{Format: "api", Method: "jobs.list"}
		return e
	}
	lost, found, normal, late := jobStory("a", "US", "lost"), jobStory("b", "US", "found"), jobStory("a", "US", "normal"), jobStory("b", "US", "late")
	old := jobStory("b", "EU", "old") // discovered hours after its creation
	reconciled := lost.event(events.KindReconciled, t0.Add(50*time.Minute), events.StateDone, events.Facts{ReconciledReason: "done"})
	steps := [][]events.Event{
		{lost.inserted(t0.Add(55*time.Minute), events.StateRunning, events.Facts{}), normal.inserted(t0.Add(55*time.Minute), events.StateRunning, events.Facts{})},
		{reconciled, reconciled, normal.completed(t0.Add(58 * time.Minute))},
		{api(found.inserted(t0.Add(56*time.Minute), events.StateRunning, events.Facts{})), api(found.progress(t0.Add(59*time.Minute), 10, 20))},
		{late.inserted(t0.Add(57*time.Minute), events.StateRunning, events.Facts{}), api(late.progress(t0.Add(59*time.Minute), 1, 2))},
		{api(old.inserted(t0.Add(-3*time.Hour), events.StateRunning, events.Facts{}))},
		{api(found.inserted(t0.Add(56*time.Minute), events.StateRunning, events.Facts{}))}, // a duplicate
	}
	for _, evs := range steps {
		if err := p.Apply(t.Context(), evs...); err != nil {
			t.Fatal(err)
		}
	}
	all := lossJSON{Since: c.Now().UTC(), lossCount: lossCount{Reconciled: 1, Discovered: 2}, ByProject: []lossGroup{
		{Key: "b", lossCount: lossCount{Discovered: 2}}, {Key: "a", lossCount: lossCount{Reconciled: 1}},
	}}
	for _, tc := range []struct {
		name   string
		caller access.Principal
		want   lossJSON
	}{
		{"to an admin", access.Anonymous(), all},
		{"to a caller who sees only its own jobs", access.Principal{Email: "ann@example.com", Role: access.RoleOwn},
			lossJSON{Since: all.Since, ByProject: []lossGroup{}}},
	} {
		var got struct {
			AuditLoss lossJSON `json:"audit_loss"`
		}
		w := get(t, as(tc.caller, p.Handler()), "/api/v1/summary")
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if diff := gocmp.Diff(got.AuditLoss, tc.want, gocmp.AllowUnexported(lossJSON{}, lossGroup{})); diff != "" {
			t.Errorf("audit loss %s (-got +want):\n%s", tc.name, diff)
		}
	}
}
