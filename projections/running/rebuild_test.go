package running

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/fakeclock"
)

func openKeys(t *testing.T, l *events.Log) []events.JobKey {
	t.Helper()
	var keys []events.JobKey
	if err := l.OpenJobs(t.Context(), func(k events.JobKey) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(keys, func(a, b events.JobKey) int { return compareIDs(&a, &b) })
	return keys
}

func TestRebuild(t *testing.T) {
	now := t0.Add(3 * time.Hour)
	evs := orgEvents(rand.New(rand.NewPCG(7, 8)), 300, now)
	// A late event after a job's completion leaves the job in the log's
	// open index; the rebuild must fold it, find it finished and prune it.
	late := jobStory("acme-etl", "US", "late_after_done")
	evs = append(evs, late.completed(now.Add(-time.Hour)), late.progress(now.Add(-30*time.Minute), 1, 1))
	l := newLog(t)
	if err := l.Append(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	p, _ := newProjection(t, l, now, Config{RebuildBatch: 7, RebuildWorkers: 3})
	if diff := cmp.Diff(wantList(evs, 1024), listed(t, p)); diff != "" {
		t.Errorf("rebuilt list (-want +got):\n%s", diff)
	}
	var running []events.JobKey
	for _, j := range wantList(evs, 1024) {
		running = append(running, events.JobKey{Project: j.Key.Project, Location: j.Key.Location, JobID: j.Key.JobID})
	}
	if diff := cmp.Diff(running, openKeys(t, l)); diff != "" {
		t.Errorf("open jobs in the log after the rebuild pruned the finished ones (-want +got):\n%s", diff)
	}
}

// TestRebuildWithLiveFeed appends and delivers events while the rebuild
// runs, as ingest does (log first, then the events topic): the result is
// the fold of everything.
func TestRebuildWithLiveFeed(t *testing.T) {
	now := t0.Add(3 * time.Hour)
	r := rand.New(rand.NewPCG(9, 10))
	before := orgEvents(r, 200, now)
	during := orgEvents(r, 100, now)
	// Some jobs of the log finish during the rebuild.
	for _, e := range before[:60] {
		s := jobStory(e.Job.Project, e.Job.Location, e.Job.JobID)
		s.n = 1000
		during = append(during, s.completed(now.Add(-time.Minute)))
	}
	l := newLog(t)
	if err := l.Append(t.Context(), before); err != nil {
		t.Fatal(err)
	}
	c := fakeclock.New(now)
	p, err := New(Config{Now: c.Now, RebuildBatch: 5, RebuildWorkers: 2}, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < len(during); i += 10 {
			batch := during[i:min(i+10, len(during))]
			if err := l.Append(t.Context(), batch); err != nil {
				t.Error(err)
				return
			}
			if err := p.Apply(t.Context(), batch...); err != nil {
				t.Error(err)
				return
			}
		}
	})
	if err := p.Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	p.MarkLive()
	if diff := cmp.Diff(wantList(slices.Concat(before, during), 1024), listed(t, p)); diff != "" {
		t.Errorf("list after a rebuild with a live feed (-want +got):\n%s", diff)
	}
}
