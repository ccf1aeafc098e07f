package history

import (
	"context"
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

func (v fakeView) Jobs(_ context.Context, from, to time.Time, project string) (map[events.JobKey]Row, error) {
	latest := map[events.JobKey]Row{}
	for _, r := range v.f.written(v.t) {
		k := keyOf(r)
		cur, ok := latest[k]
		if !ok || r["event_count"].(int64) > cur["event_count"].(int64) ||
			r["event_count"] == cur["event_count"] && r["version_time"].(time.Time).After(cur["version_time"].(time.Time)) {
			latest[k] = r
		}
	}
	out := map[events.JobKey]Row{}
	for k, r := range latest {
		recent := !r["last_seen"].(time.Time).Before(from) || r["state"] != string(events.StateDone)
		if r["first_seen"].(time.Time).Before(to) && recent && (project == "" || k.Project == project) {
			out[k] = r
		}
	}
	return out, nil
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
