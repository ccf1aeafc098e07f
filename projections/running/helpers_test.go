package running

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/fakeclock"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/projections/access"
)

// t0 is the start of every test's story: recent enough that the log's
// garbage-collection rules keep its events, and whole so that golden files
// do not change from run to run. Golden tests set their own fixed clock.
var t0 = time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)

// newLog opens an event log on a table of the test's own: on the Bigtable
// emulator when BIGTABLE_EMULATOR_HOST is set, on bttest otherwise.
func newLog(t testing.TB) *events.Log {
	t.Helper()
	bt := logtest.NewBigtable(t)
	l, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// newProjection returns a ready projection over l (a new log when nil)
// with a clock set to now.
func newProjection(t testing.TB, l eventLog, now time.Time, cfg Config) (*Projection, *fakeclock.Clock) {
	t.Helper()
	if l == nil {
		l = newLog(t)
	}
	c := fakeclock.New(now)
	cfg.Now = c.Now
	p, err := New(cfg, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if err := p.Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	p.MarkLive()
	return p, c
}

// story builds a job's events.
type story struct {
	key  events.JobKey
	base events.Facts
	n    int
}

func jobStory(project, location, id string) *story {
	return &story{key: events.JobKey{Project: project, Location: location, JobID: id}}
}

// event returns the story's next event at time at; facts fill the rest.
func (s *story) event(kind events.Kind, at time.Time, state events.State, facts events.Facts) events.Event {
	s.n++
	return events.Event{
		ID: events.DerivedEventID(s.key.String(), string(kind), fmt.Sprint(s.n)), Kind: kind, Job: s.key,
		Time: at, State: state, Facts: facts, Source: events.Source{Format: "v2", Method: string(kind)},
	}
}

func (s *story) inserted(at time.Time, state events.State, facts events.Facts) events.Event {
	facts.CreateTime = at
	if state == events.StateRunning && facts.StartTime.IsZero() {
		facts.StartTime = at
	}
	return s.event(events.KindInserted, at, state, facts)
}

func (s *story) started(at time.Time) events.Event {
	return s.event(events.KindStateChanged, at, events.StateRunning, events.Facts{StartTime: at})
}

func (s *story) progress(at time.Time, slotMs, bytes int64) events.Event {
	return s.event(events.KindProgress, at, events.StateRunning, events.Facts{SlotMs: events.Int64(slotMs), BytesProcessed: events.Int64(bytes),
		Progress: events.Progress{CompletedUnits: events.Int64(slotMs / 1000), PendingUnits: events.Int64(10), ActiveUnits: events.Int64(2)}})
}

func (s *story) completed(at time.Time) events.Event {
	return s.event(events.KindCompleted, at, events.StateDone, events.Facts{EndTime: at})
}

// get requests path from h and returns the response.
func get(t testing.TB, h http.Handler, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// asAdmin serves h to an admin, as the authentication middleware does with
// --auth=none: every request carries the anonymous admin principal.
func asAdmin(h http.Handler) http.Handler { return as(access.Anonymous(), h) }

// as serves h to the caller p.
func as(p access.Principal, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(access.WithPrincipal(r.Context(), p)))
	})
}
