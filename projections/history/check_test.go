package history

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
)

// fakeView is the jobs view over the rows a fake stream accepted, as its
// SQL says: of each job the row that folds the most events, the latest
// written among equals, when its first event is before to and its last at
// or after from, or it has not finished.
type fakeView struct {
	f *fakeStream
	t *testing.T
}

func (v fakeView) Jobs(_ context.Context, from, to time.Time, project string, fn func(Row) error) error {
	latest := map[events.JobKey]Row{}
	for _, r := range v.f.written(v.t) {
		k := keyOf(r)
		cur, ok := latest[k]
		if !ok || r["event_count"].(int64) > cur["event_count"].(int64) ||
			r["event_count"] == cur["event_count"] && r["version_time"].(time.Time).After(cur["version_time"].(time.Time)) {
			latest[k] = r
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(latest), compareKeys) { // ORDER BY the key
		r := latest[k]
		recent := !r["last_seen"].(time.Time).Before(from) || r["state"] != string(events.StateDone)
		if r["first_seen"].(time.Time).Before(to) && recent && (project == "" || k.Project == project) {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// progressOf is a progress sample of job at t.
func progressOf(job events.Event, id string, at time.Time) events.Event {
	p := events.Event{ID: id, Kind: events.KindProgress, Job: job.Job, Time: at,
		State: events.StateRunning, Source: events.Source{Format: "api"}}
	p.SlotMs = events.Int64(9000)
	return p
}

// TestCheck checks jobs whose events the sink handled as it does: a
// progress sample of a running job makes no row, so check finds nothing
// wrong with such a job over any range, but does find an event the sink
// should have written.
func TestCheck(t *testing.T) {
	running := queryJob("running", events.Facts{}, nil)[:2]
	progress := progressOf(running[0], "running-p", t0.Add(5*time.Second))
	lateProgress := progressOf(running[0], "running-late", t0.Add(time.Hour))
	done := queryJob("done", doneFacts(1<<20), nil)
	afterEnd := progressOf(done[0], "done-p", t0.Add(20*time.Second))
	afterEnd.State = events.StateDone
	wide, recent := [2]time.Time{t0.Add(-time.Hour), t0.Add(2 * time.Hour)}, [2]time.Time{t0.Add(50 * time.Minute), t0.Add(2 * time.Hour)}
	tests := []struct {
		name    string
		logged  []events.Event // in the log before the sink handles anything
		handled []events.Event // appended to the log (unless logged) and handled, in order
		lost    []events.Event // appended to the log, never handled
		replay  bool
		rng     [2]time.Time
		want    CheckStats
	}{
		{name: "a running job with a progress sample since its row", logged: running,
			handled: append(running[:2:2], progress), rng: wide, want: CheckStats{Jobs: 1}},
		{name: "a running job with a progress sample its row folds", logged: append(running[:2:2], progress),
			handled: running[1:], rng: wide, want: CheckStats{Jobs: 1}},
		{name: "a range holding only a running job's progress", logged: running,
			handled: append(running[:2:2], progress, lateProgress), rng: recent, want: CheckStats{Jobs: 1}},
		{name: "a running job replayed", logged: append(running[:2:2], progress, lateProgress),
			replay: true, rng: wide, want: CheckStats{Jobs: 1}},
		{name: "a running job whose state change was lost", logged: running[:1], handled: running[:1],
			lost: []events.Event{running[1], progress}, rng: wide, want: CheckStats{Jobs: 1, Different: 1}},
		{name: "a finished job whose late progress was lost", logged: done, handled: done,
			lost: []events.Event{afterEnd}, rng: wide, want: CheckStats{Jobs: 1, Different: 1}},
		{name: "a running job never written", logged: running, lost: []events.Event{progress},
			rng: wide, want: CheckStats{Jobs: 1, Missing: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := newLog(t, tt.logged...)
			f := &fakeStream{}
			s := newFakeSink(t, log, f, Config{})
			for _, e := range tt.handled {
				if err := log.Append(t.Context(), []events.Event{e}); err != nil {
					t.Fatal(err)
				}
				if err := s.Handle(t.Context(), e); err != nil {
					t.Fatal(err)
				}
			}
			if err := log.Append(t.Context(), tt.lost); err != nil {
				t.Fatal(err)
			}
			if tt.replay {
				if _, err := s.Replay(t.Context(), ReplayOptions{From: tt.rng[0], To: tt.rng[1]}); err != nil {
					t.Fatal(err)
				}
			}
			c, err := NewChecker(Config{Now: fixedNow}, log, fakeView{f, t})
			if err != nil {
				t.Fatal(err)
			}
			got, diffs, err := c.Check(t.Context(), tt.rng[0], tt.rng[1], "")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("check (-want +got):\n%s\n%+v", diff, diffs)
			}
		})
	}
}

// strangerView is a view that loses the rows of some jobs and has one more
// of a job with no event in the range, counting the rows it has handed over.
type strangerView struct {
	View
	lost      map[string]bool
	stranger  Row
	delivered int
}

func (v *strangerView) Jobs(ctx context.Context, from, to time.Time, project string, fn func(Row) error) error {
	strangerKey := keyOf(v.stranger)
	return v.View.Jobs(ctx, from, to, project, func(r Row) error {
		if v.stranger != nil && compareKeys(strangerKey, keyOf(r)) < 0 {
			v.delivered++
			if err := fn(v.stranger); err != nil {
				return err
			}
			v.stranger = nil
		}
		if v.lost[keyOf(r).JobID] {
			return nil
		}
		v.delivered++
		return fn(r)
	})
}

// batchLog records the batches of jobs Check reads, and how many rows the
// view had handed over when each was read.
type batchLog struct {
	Log
	view    *strangerView
	batches [][2]int // jobs read, rows delivered by then
}

func (l *batchLog) ReadJobs(ctx context.Context, keys []events.JobKey, fn func(events.JobKey, []events.Event) error) error {
	l.batches = append(l.batches, [2]int{len(keys), l.view.delivered})
	return l.Log.ReadJobs(ctx, keys, fn)
}

// TestCheckStreams checks a range of more jobs than one batch: the view's
// rows are joined with the log's jobs as they come, a few batches at a
// time (never the whole range in memory), and the jobs without a row are
// found at the start, the middle and the end of the key order, while a row
// of a job with no event in the range is passed over.
func TestCheckStreams(t *testing.T) {
	const n = 2*checkBatch + 300
	var evs []events.Event
	for i := range n {
		evs = append(evs, queryJob(fmt.Sprintf("job_%05d", i), doneFacts(1<<20), nil)...)
	}
	log := newLog(t, evs...)
	f := &fakeStream{}
	s := newFakeSink(t, log, f, Config{})
	if _, err := s.Replay(t.Context(), ReplayOptions{From: t0.Add(-time.Hour), To: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	lost := map[string]bool{"job_00000": true, fmt.Sprintf("job_%05d", n/2): true, fmt.Sprintf("job_%05d", n-1): true}
	var stranger Row
	if err := (fakeView{f, t}).Jobs(t.Context(), t0.Add(-time.Hour), t0.Add(time.Hour), "", func(r Row) error {
		if stranger == nil {
			stranger = maps.Clone(r)
			stranger["job_id"] = "job_00010x" // between two jobs of the range
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	v := &strangerView{View: fakeView{f, t}, lost: lost, stranger: stranger}
	bl := &batchLog{Log: log, view: v}
	c, err := NewChecker(Config{Now: fixedNow}, bl, v)
	if err != nil {
		t.Fatal(err)
	}
	got, diffs, err := c.Check(t.Context(), t0.Add(-time.Hour), t0.Add(time.Hour), "")
	if err != nil {
		t.Fatal(err)
	}
	if want := (CheckStats{Jobs: n, Missing: len(lost)}); got != want {
		t.Errorf("check %+v, want %+v; differences %+v", got, want, diffs)
	}
	for _, d := range diffs {
		if !lost[d.Job.JobID] {
			t.Errorf("%s reported %+v", d.Job, d)
		}
	}
	if len(bl.batches) < 3 {
		t.Fatalf("the log was read in %d batches, want at least 3", len(bl.batches))
	}
	for i, b := range bl.batches {
		if b[0] > checkBatch || b[1] > (i+1)*checkBatch+len(lost)+1 {
			t.Errorf("batch %d read %d jobs after %d rows: the rows were not joined as they came", i, b[0], b[1])
		}
	}
}
