package enrich_test

import (
	"cmp"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/enrich"
	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/simulation"
	"github.com/bqobserver/bqobserver/projections/access"
)

// listedJob is a job as the list API sends it, what these tests read.
type listedJob struct {
	Key    events.JobKey `json:"key"`
	State  string        `json:"state"`
	SlotMs *int64        `json:"slot_ms"`
}

// list pages through the running list as an admin does, and fails the
// test if a job is listed twice or the pages miss some of the total.
func (w *world) list() []listedJob {
	w.t.Helper()
	h := w.proj.Handler()
	var out []listedJob
	seen := map[events.JobKey]bool{}
	cursor, total := "", 0
	for {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/api/v1/jobs?limit=1000&cursor="+url.QueryEscape(cursor), nil)
		h.ServeHTTP(rec, req.WithContext(access.WithPrincipal(req.Context(), access.Anonymous())))
		var page struct {
			Jobs  []listedJob `json:"jobs"`
			Next  string      `json:"next_cursor"`
			Total int         `json:"total"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || rec.Code != 200 {
			w.t.Fatalf("listing: %d %v\n%s", rec.Code, err, rec.Body)
		}
		for _, j := range page.Jobs {
			if seen[j.Key] {
				w.t.Errorf("job %s listed twice", j.Key)
			}
			seen[j.Key] = true
		}
		out, total = append(out, page.Jobs...), page.Total
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if len(out) != total || total != w.proj.Len() {
		w.t.Errorf("the pages hold %d jobs of a total of %d; the projection has %d", len(out), total, w.proj.Len())
	}
	return out
}

// overdue returns the listed jobs the simulation ended more than limit
// ago.
func (w *world) overdue(limit time.Duration) []string {
	now := w.org.Now()
	var out []string
	for _, j := range w.list() {
		tr, ok := w.org.Job(j.Key)
		if ok && tr.State == events.StateDone && now.Sub(tr.Ended) > limit {
			out = append(out, j.Key.String()+" ended "+now.Sub(tr.Ended).String()+" ago")
		}
	}
	return out
}

func byKey(a, b events.JobKey) int { return cmp.Compare(a.String(), b.String()) }

// TestLostCompletionsLeaveWithinTwoCycles runs an organization at 20 jobs/s
// for four simulated minutes with a 5 s enrichment cycle. After every
// cycle no job the API reports DONE for more than two cycles is listed,
// lost completions included, and no job is listed twice. The jobs
// reconciled are exactly the lost completions.
//
// Entries are not delayed beyond the usual second or two: a completion
// two minutes late is rightly reconciled too, but it is not lost, and the
// test compares with lost ones.
func TestLostCompletionsLeaveWithinTwoCycles(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates four minutes at 20 jobs/s")
	}
	delivery := simulation.DefaultDelivery()
	delivery.DelayShare = 0
	w := newWorld(t, simulation.Config{Seed: 11, Rate: 20, Delivery: &delivery})
	const interval = 5 * time.Second
	e := w.enricher(enrich.Config{Interval: interval}, enrich.Deps{})
	sawProgress := false
	const cycles = 48
	for range cycles {
		w.step(interval)
		e.Cycle(t.Context())
		if late := w.overdue(2 * interval); len(late) > 0 {
			t.Fatalf("at %s, jobs the API reports DONE are still listed:\n%v", w.org.Now(), late)
		}
		for _, j := range w.list() {
			sawProgress = sawProgress || (j.State == "RUNNING" && j.SlotMs != nil)
		}
	}
	if !sawProgress {
		t.Error("no running job ever showed its slot-ms")
	}
	cutoff := w.org.Now().Add(-2 * interval)
	var lost, lostBefore []events.JobKey
	for _, tr := range w.org.LostCompletions() {
		lost = append(lost, tr.Job)
		if !tr.Ended.After(cutoff) {
			lostBefore = append(lostBefore, tr.Job)
		}
	}
	if len(lostBefore) < 10 {
		t.Fatalf("only %d lost completions: the test needs more", len(lostBefore))
	}
	var reconciled, reconciledBefore []events.JobKey
	for _, ev := range w.feed.appendedByEnrichment() {
		if ev.Kind != events.KindReconciled {
			continue
		}
		reconciled = append(reconciled, ev.Job)
		tr, _ := w.org.Job(ev.Job)
		if !tr.Ended.After(cutoff) {
			reconciledBefore = append(reconciledBefore, ev.Job)
		}
		if got, want := (endOf{ev.State, ev.Time, ev.EndTime, ev.ReconciledReason}), (endOf{events.StateDone, tr.Ended, tr.Ended, enrich.ReasonDone}); got != want {
			t.Errorf("job %s reconciled as %+v, want %+v", ev.Job, got, want)
		}
	}
	for _, s := range [][]events.JobKey{lost, lostBefore, reconciled, reconciledBefore} {
		slices.SortFunc(s, byKey)
	}
	if diff := gocmp.Diff(reconciledBefore, lostBefore); diff != "" {
		t.Errorf("jobs reconciled that ended two cycles before the end (-got +want):\n%s", diff)
	}
	for _, k := range reconciled {
		if _, ok := slices.BinarySearchFunc(lost, k, byKey); !ok {
			t.Errorf("job %s was reconciled though its completion was not lost", k)
		}
	}
	t.Logf("%d jobs, %d lost completions, %d reconciled; %d jobs.list and %d jobs.get calls in %d cycles", w.org.Stats().Jobs,
		len(lost), len(reconciled), calls(w.api, simulation.MethodList), calls(w.api, simulation.MethodGet), cycles)
}

// endOf is how a reconciled event ends its job.
type endOf struct {
	State   events.State
	Time    time.Time
	EndTime time.Time
	Reason  string
}
