package events

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDropImplausible(t *testing.T) {
	at := time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC)
	y1969 := time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC)
	y9999 := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		facts     Facts
		wantFacts Facts
		want      []Dropped
	}{
		{
			name:      "plausible facts are kept",
			facts:     Facts{SlotMs: Int64(0), BytesBilled: Int64(MaxPlausibleCount), StartTime: EarliestPlausible, EndTime: at.Add(FutureTolerance)},
			wantFacts: Facts{SlotMs: Int64(0), BytesBilled: Int64(MaxPlausibleCount), StartTime: EarliestPlausible, EndTime: at.Add(FutureTolerance)},
		},
		{
			name:      "negative counts",
			facts:     Facts{SlotMs: Int64(-1), BytesProcessed: Int64(math.MinInt64), Query: "SELECT 1", Progress: Progress{PendingUnits: Int64(-3)}},
			wantFacts: Facts{Query: "SELECT 1"},
			want: []Dropped{
				{Field: "bytes_processed", Reason: ImplausibleNegative, Value: "-9223372036854775808"},
				{Field: "slot_ms", Reason: ImplausibleNegative, Value: "-1"},
				{Field: "pending_units", Reason: ImplausibleNegative, Value: "-3"},
			},
		},
		{
			name:      "counts beyond an exabyte",
			facts:     Facts{BytesBilled: Int64(MaxPlausibleCount + 1), OutputRows: Int64(math.MaxInt64), SlotMs: Int64(7)},
			wantFacts: Facts{SlotMs: Int64(7)},
			want: []Dropped{
				{Field: "bytes_billed", Reason: ImplausibleTooLarge, Value: "1152921504606846977"},
				{Field: "output_rows", Reason: ImplausibleTooLarge, Value: "9223372036854775807"},
			},
		},
		{
			name:      "times in 1969 and 9999",
			facts:     Facts{CreateTime: y1969, StartTime: y9999, EndTime: at},
			wantFacts: Facts{EndTime: at},
			want: []Dropped{
				{Field: "create_time", Reason: ImplausibleTooEarly, Value: "1969-12-31T23:59:59Z"},
				{Field: "start_time", Reason: ImplausibleFuture, Value: "9999-12-31T00:00:00Z"},
			},
		},
		{
			name:      "a time more than a day after its event",
			facts:     Facts{StartTime: at.Add(FutureTolerance + time.Nanosecond)},
			wantFacts: Facts{},
			want:      []Dropped{{Field: "start_time", Reason: ImplausibleFuture, Value: "2025-03-04T08:00:00.000000001Z"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := Event{ID: "e", Kind: KindCompleted, Time: at, Facts: tc.facts}
			got := e.DropImplausible()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("dropped (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantFacts, e.Facts); diff != "" {
				t.Errorf("facts kept (-want +got):\n%s", diff)
			}
		})
	}
}

func TestImplausibleTime(t *testing.T) {
	now := time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		t    time.Time
		ref  time.Time
		want string
	}{
		{"now", now, now, ""},
		{"2010", EarliestPlausible, now, ""},
		{"1969", time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC), now, ImplausibleTooEarly},
		{"the zero time", time.Time{}, now, ImplausibleTooEarly},
		{"a day ahead", now.Add(FutureTolerance), now, ""},
		{"more than a day ahead", now.Add(FutureTolerance + time.Second), now, ImplausibleFuture},
		{"9999", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), now, ImplausibleFuture},
		{"no reference", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ImplausibleTime(tc.t, tc.ref); got != tc.want {
				t.Errorf("ImplausibleTime(%s, %s) = %q, want %q", tc.t, tc.ref, got, tc.want)
			}
		})
	}
}
