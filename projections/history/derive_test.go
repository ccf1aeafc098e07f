package history

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
)

func TestEstimatedCost(t *testing.T) {
	v, err := newVersioner(Config{})
	if err != nil {
		t.Fatal(err)
	}
	job := func(location, reservation string, billed *int64) *events.Job {
		j := &events.Job{Key: events.JobKey{Project: "p", Location: location, JobID: "j"}}
		j.Reservation, j.BytesBilled = reservation, billed
		return j
	}
	script := func(j *events.Job) *events.Job { j.StatementType = "SCRIPT"; return j }
	tests := []struct {
		name string
		job  *events.Job
		want *float64
	}{
		{"a TiB on demand in US", job("US", "unreserved", events.Int64(1<<40)), ptr(6.25)},
		{"no reservation named", job("US", "", events.Int64(1<<39)), ptr(3.125)},
		{"a region priced higher", job("europe-west2", "unreserved", events.Int64(1<<40)), ptr(7.8125)},
		{"nothing billed", job("EU", "unreserved", events.Int64(0)), ptr(0)},
		{"in a reservation", job("US", "admin:US.etl", events.Int64(1<<40)), nil},
		{"bytes billed not known", job("US", "unreserved", nil), nil},
		{"a location without a price", job("mars-north1", "unreserved", events.Int64(1<<40)), nil},
		{"asked for no reservation", job("US", "none", events.Int64(1<<40)), ptr(6.25)},
		{"a script's parent, whose bytes are its children's", script(job("US", "unreserved", events.Int64(1<<40))), nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, v.estimatedCost(tt.job)); diff != "" {
			t.Errorf("%s: estimatedCost (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestMillisBetween(t *testing.T) {
	tests := []struct {
		name string
		a, b time.Time
		want *int64
	}{
		{"both known", t0, t0.Add(1500 * time.Millisecond), events.Int64(1500)},
		{"no start", t0, time.Time{}, nil},
		{"no creation", time.Time{}, t0, nil},
		{"clocks disagreeing", t0, t0.Add(-time.Second), nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, millisBetween(tt.a, tt.b)); diff != "" {
			t.Errorf("%s: millisBetween (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestFinalStateSource(t *testing.T) {
	done := func(kind events.Kind, format string) events.Event {
		return events.Event{Kind: kind, State: events.StateDone, Source: events.Source{Format: format}}
	}
	running := events.Event{Kind: events.KindStateChanged, State: events.StateRunning, Source: events.Source{Format: "v2"}}
	tests := []struct {
		name string
		evs  []events.Event
		want string
	}{
		{"a completion entry", []events.Event{running, done(events.KindCompleted, "v1")}, SourceAuditLog},
		{"the jobs API", []events.Event{running, done(events.KindProgress, "api")}, SourceAPI},
		{"a reconciliation", []events.Event{running, done(events.KindReconciled, "api")}, SourceReconciliation},
		{"a completion after a reconciliation", []events.Event{done(events.KindReconciled, "api"), done(events.KindCompleted, "v2")}, SourceAuditLog},
		{"an operator", []events.Event{done(events.KindCompleted, "operator")}, "operator"},
		{"not finished", []events.Event{running}, ""},
	}
	for _, tt := range tests {
		if got := finalStateSource(tt.evs); got != tt.want {
			t.Errorf("%s: finalStateSource = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func ptr(v float64) *float64 { return &v }

// TestVersionDropsImplausible derives a version from events an older
// writer left in the log with values that cannot be true: the version
// carries none of them, and derives nothing from them.
func TestVersionDropsImplausible(t *testing.T) {
	v, err := newVersioner(Config{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	key := events.JobKey{Project: "p", Location: "US", JobID: "j"}
	evs := []events.Event{
		{ID: "a", Job: key, Kind: events.KindInserted, State: events.StateRunning, Time: t0,
			Facts: events.Facts{CreateTime: t0, StartTime: time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), SlotMs: events.Int64(-5)}},
		{ID: "b", Job: key, Kind: events.KindCompleted, State: events.StateDone, Time: t0.Add(time.Minute),
			Facts: events.Facts{EndTime: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), BytesBilled: events.Int64(math.MaxInt64),
				Reservation: "unreserved", BytesProcessed: events.Int64(1 << 30)}},
	}
	j, d := v.version(key, evs)
	type version struct {
		StartTime, EndTime                  time.Time
		SlotMs, BytesBilled, BytesProcessed *int64
		QueuedMs, RunMs                     *int64
		EstimatedCostUSD                    *float64
	}
	got := version{j.StartTime, j.EndTime, j.SlotMs, j.BytesBilled, j.BytesProcessed, d.QueuedMs, d.RunMs, d.EstimatedCostUSD}
	want := version{BytesProcessed: events.Int64(1 << 30)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("version (-want +got):\n%s", diff)
	}
}
