package history

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/bus"
)

// brokenLog is a log whose reads fail.
type brokenLog struct {
	Log
	err error
}

func (b brokenLog) JobEvents(context.Context, events.JobKey) ([]events.Event, error) {
	return nil, b.err
}

func (b brokenLog) JobDone(context.Context, events.JobKey) (bool, error) { return false, b.err }

// readsCounted is a log that counts the reads of a job's events.
type readsCounted struct {
	Log
	reads int
}

func (l *readsCounted) JobEvents(ctx context.Context, k events.JobKey) ([]events.Event, error) {
	l.reads++
	return l.Log.JobEvents(ctx, k)
}

// TestSinkSamplesReadNoEvents: the progress samples of a running job,
// which make no row, do not read the job's events, whose number grows with
// every sample: a long job would otherwise cost the square of its events.
func TestSinkSamplesReadNoEvents(t *testing.T) {
	running := queryJob("running", events.Facts{}, nil)[:2]
	var samples []events.Event
	for i := range 50 {
		p := events.Event{ID: fmt.Sprintf("running-p%d", i), Kind: events.KindProgress, Job: running[0].Job, Time: t0.Add(time.Duration(5+i) * time.Second),
			State: events.StateRunning, Source: events.Source{Format: "api"}}
		p.SlotMs = events.Int64(int64(i))
		samples = append(samples, p)
	}
	log := &readsCounted{Log: newLog(t, append(running, samples...)...)}
	f := &fakeStream{}
	s := newFakeSink(t, log, f, Config{})
	for _, p := range samples {
		if err := s.Handle(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	if log.reads != 0 || len(f.written(t)) != 0 {
		t.Errorf("50 samples of a running job read its events %d times and wrote %d rows, want 0 and 0", log.reads, len(f.written(t)))
	}
}

// TestSinkHandle handles one event at a time: each writes the fold of all
// the job's events the log has (and of the event itself), except a progress
// sample of a job still running, which writes nothing.
func TestSinkHandle(t *testing.T) {
	done := queryJob("done", doneFacts(1<<30), nil)
	running := queryJob("running", events.Facts{}, nil)[:2]
	progress := events.Event{ID: "running-p", Kind: events.KindProgress, Job: running[0].Job, Time: t0.Add(5e9),
		State: events.StateRunning, Source: events.Source{Format: "api"}}
	progress.ActiveUnits = events.Int64(3)
	lateProgress := progress
	lateProgress.ID, lateProgress.Job = "done-p", done[0].Job
	unlogged := queryJob("unlogged", doneFacts(1<<20), nil)
	tests := []struct {
		name    string
		event   events.Event
		wantRow []events.Event // the events the row folds; nil: no row
		outcome string
	}{
		{"the first event of a finished job", done[0], done, outcomeWritten},
		{"its completion", done[2], done, outcomeWritten},
		{"a progress sample of a running job", progress, nil, outcomeSkipped},
		{"a state change of a running job", running[1], append(running[:2:2], progress), outcomeWritten},
		{"a progress sample after the end", lateProgress, append(done[:3:3], lateProgress), outcomeWritten},
		{"an event the log does not have yet", unlogged[2], unlogged, outcomeWritten},
	}
	log := newLog(t, append(append(append(append([]events.Event{}, done...), running...), progress), unlogged[:2]...)...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeStream{}
			s := newFakeSink(t, log, f, Config{})
			if tt.name == "a progress sample after the end" {
				if err := log.Append(t.Context(), []events.Event{lateProgress}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Handle(t.Context(), tt.event); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			var want []Row
			if tt.wantRow != nil {
				j, d := s.v.version(tt.event.Job, tt.wantRow)
				want = append(want, values(s.v.rows.message(&j, &d), s.v.rows.schema))
			}
			if diff := cmp.Diff(want, f.written(t)); diff != "" {
				t.Errorf("rows written (-want +got):\n%s", diff)
			}
			if got := testutil.ToFloat64(s.metrics.rows.WithLabelValues(tt.outcome)); got != 1 {
				t.Errorf("events counted %s: %v, want 1", tt.outcome, got)
			}
		})
	}
}

// TestSinkHandleFailures checks the errors Handle gives the consumer's
// policy: a refused row is permanent with its reason, a failure to read the
// log or to write is transient.
func TestSinkHandleFailures(t *testing.T) {
	bad := queryJob("bad_job", doneFacts(1), nil)
	good := queryJob("good_job", doneFacts(1), nil)
	log := newLog(t, append(bad, good...)...)
	t.Run("a refused row", func(t *testing.T) {
		err := newFakeSink(t, log, &fakeStream{}, Config{}).Handle(t.Context(), bad[2])
		var perm *bus.PermanentError
		if !errors.As(err, &perm) || perm.Reason != ReasonRowRejected || !bus.IsPermanent(err) {
			t.Errorf("Handle = %v; want a permanent error with reason %s", err, ReasonRowRejected)
		}
	})
	t.Run("the log unavailable", func(t *testing.T) {
		s := newFakeSink(t, brokenLog{log, fmt.Errorf("reading: %w", events.ErrUnavailable)}, &fakeStream{}, Config{})
		if err := s.Handle(t.Context(), good[2]); !errors.Is(err, events.ErrUnavailable) || bus.IsPermanent(err) {
			t.Errorf("Handle = %v; want a transient error", err)
		}
	})
	t.Run("BigQuery unavailable", func(t *testing.T) {
		f := &fakeStream{fail: func() error { return fmt.Errorf("dialing: connection refused") }}
		if err := newFakeSink(t, log, f, Config{}).Handle(t.Context(), good[2]); !errors.Is(err, events.ErrUnavailable) || bus.IsPermanent(err) {
			t.Errorf("Handle = %v; want a transient error", err)
		}
	})
}
