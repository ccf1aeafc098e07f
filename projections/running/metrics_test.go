package running

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/fakeclock"
)

// gathered returns the value of every gauge and counter on reg, by name.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetGauge() != nil:
				got[mf.GetName()] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				got[mf.GetName()] = m.GetCounter().GetValue()
			}
		}
	}
	return got
}

// TestRebuildMetrics checks what the metrics say about a rebuild of a log
// whose open-jobs index holds three running jobs and two finished jobs
// that late events re-opened (a third finished job left the index with its
// DONE event), and then about the live feed pruning a job that another late
// event re-opened.
func TestRebuildMetrics(t *testing.T) {
	now := t0.Add(time.Hour)
	l := newLog(t)
	var evs []events.Event
	for _, id := range []string{"running_1", "running_2", "running_3"} {
		evs = append(evs, jobStory("acme-etl", "US", id).inserted(now.Add(-10*time.Minute), events.StateRunning, events.Facts{}))
	}
	var reopened []*story
	for _, id := range []string{"reopened_1", "reopened_2"} {
		s := jobStory("acme-etl", "US", id)
		reopened = append(reopened, s)
		evs = append(evs, s.completed(now.Add(-5*time.Minute)))
	}
	clean := jobStory("acme-etl", "US", "finished")
	evs = append(evs, clean.inserted(now.Add(-9*time.Minute), events.StateRunning, events.Facts{}), clean.completed(now.Add(-8*time.Minute)))
	if err := l.Append(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	appendLate(t, l, reopened[0].started(now.Add(-6*time.Minute)), reopened[1].started(now.Add(-6*time.Minute)))

	reg := prometheus.NewRegistry()
	p, err := New(Config{Now: fakeclock.New(now).Now, Registerer: reg}, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := gathered(t, reg)
	if took := got["bqobserver_running_rebuild_seconds"]; !(took > 0) {
		t.Errorf("bqobserver_running_rebuild_seconds is %g, want the rebuild's positive duration", took)
	}
	delete(got, "bqobserver_running_rebuild_seconds")
	want := map[string]float64{
		"bqobserver_running_rebuild_index_entries":     5,
		"bqobserver_running_rebuild_running_jobs":      3,
		"bqobserver_running_rebuild_finished_jobs":     2,
		"bqobserver_running_pruned_jobs_total":         0,
		"bqobserver_running_prune_queued_jobs":         0,
		"bqobserver_running_prune_left_out_jobs_total": 0,
		"bqobserver_running_index_sweeps_total":        0,
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("metrics after the rebuild (-got +want):\n%s", diff)
	}

	late := reopened[0].progress(now.Add(-4*time.Minute), 10, 10)
	appendLate(t, l, late)
	if err := p.Apply(t.Context(), late); err != nil {
		t.Fatal(err)
	}
	if got := gathered(t, reg)["bqobserver_running_prune_queued_jobs"]; got != 1 {
		t.Errorf("bqobserver_running_prune_queued_jobs is %g after the feed found one finished job in the index, want 1", got)
	}
	p.pruner.flush(t.Context())
	got = gathered(t, reg)
	if got["bqobserver_running_pruned_jobs_total"] != 1 || got["bqobserver_running_prune_queued_jobs"] != 0 {
		t.Errorf("bqobserver_running_pruned_jobs_total is %g and …_prune_queued_jobs %g after the feed pruned one job, want 1 and 0",
			got["bqobserver_running_pruned_jobs_total"], got["bqobserver_running_prune_queued_jobs"])
	}
}

// appendLate appends events that arrive after their jobs' DONE events.
func appendLate(t *testing.T, l *events.Log, evs ...events.Event) {
	t.Helper()
	if err := l.Append(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
}
