package bus

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bqobserver/bqobserver/events"
)

// TestAppenderDropsImplausibleValues appends, as any writer might, events
// with statistics and times that cannot be true: the values are dropped
// and counted, the events appended; an event whose own time is implausible
// is refused as invalid, and nothing of its append is written.
func TestAppenderDropsImplausibleValues(t *testing.T) {
	f := newFixture(t)
	l := newLog(t)
	a := newAppender(t, f, l, AppenderConfig{})
	evs := jobEvents("odd", 2)
	evs[0].SlotMs, evs[0].BytesBilled = events.Int64(math.MinInt64), events.Int64(math.MaxInt64)
	evs[1].StartTime = time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)
	want := jobEvents("odd", 2)
	want[0].SlotMs, want[0].BytesBilled, want[1].StartTime = nil, nil, time.Time{}
	if err := a.Append(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, logged(t, l)); diff != "" {
		t.Errorf("logged (-want +got):\n%s", diff)
	}
	for _, c := range []struct {
		field, reason string
		want          float64
	}{{"slot_ms", events.ImplausibleNegative, 1}, {"bytes_billed", events.ImplausibleTooLarge, 1}, {"start_time", events.ImplausibleTooEarly, 1}} {
		if got := testutil.ToFloat64(a.plausible.dropped.WithLabelValues(c.field, c.reason)); got != c.want {
			t.Errorf("dropped %s (%s) counted %g times, want %g", c.field, c.reason, got, c.want)
		}
	}

	future := jobEvents("future", 2)
	future[1].Time = time.Now().Add(48 * time.Hour)
	if err := a.Append(t.Context(), future); !errors.Is(err, events.ErrInvalid) {
		t.Errorf("appending an event two days ahead: %v, want an error matching events.ErrInvalid", err)
	}
	if got := len(logged(t, l)); got != 2 {
		t.Errorf("the log holds %d events after the refused append, want the 2 before it", got)
	}
}
