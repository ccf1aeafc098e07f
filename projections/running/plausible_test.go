package running

import (
	"encoding/json"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
)

func TestAddSaturating(t *testing.T) {
	for _, tc := range []struct {
		name       string
		a, b, want int64
	}{
		{"small", 2, 3, 5},
		{"to the maximum", math.MaxInt64 - 1, 1, math.MaxInt64},
		{"past the maximum", math.MaxInt64, math.MaxInt64, math.MaxInt64},
		{"past the minimum", math.MinInt64, -1, math.MinInt64},
		{"opposite signs", math.MaxInt64, math.MinInt64, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := addSaturating(tc.a, tc.b); got != tc.want {
				t.Errorf("addSaturating(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

// TestImplausibleFactsInTheList feeds the projection events with values
// that cannot be true, as an older writer may have left them in the log:
// they are dropped, so a job started in 1969 is not the oldest running,
// negative and out-of-range statistics are not shown, and the summary's
// sums of many jobs at the largest plausible slot-ms saturate instead of
// wrapping around.
func TestImplausibleFactsInTheList(t *testing.T) {
	now := t0.Add(time.Hour)
	p, _ := newProjection(t, nil, now, Config{})
	at := now.Add(-10 * time.Minute)
	y1969 := jobStory("acme-etl", "US", "started_1969")
	odd := jobStory("acme-etl", "US", "odd_statistics")
	oldest := jobStory("acme-etl", "US", "really_oldest")
	evs := []events.Event{
		y1969.inserted(at, events.StateRunning, events.Facts{StartTime: time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC)}),
		odd.inserted(at, events.StateRunning, events.Facts{SlotMs: events.Int64(-5), BytesProcessed: events.Int64(math.MaxInt64),
			EndTime: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}),
		oldest.inserted(at.Add(-time.Hour), events.StateRunning, events.Facts{}),
	}
	for i := range 9 {
		s := jobStory("acme-heavy", "US", "heavy_"+string(rune('a'+i)))
		evs = append(evs, s.inserted(at, events.StateRunning, events.Facts{SlotMs: events.Int64(events.MaxPlausibleCount)}))
	}
	if err := p.Apply(t.Context(), evs...); err != nil {
		t.Fatal(err)
	}
	var sum struct {
		OldestRunning struct {
			Key struct {
				JobID string `json:"job_id"`
			} `json:"key"`
		} `json:"oldest_running"`
		ByProject []struct {
			Key    string `json:"key"`
			SlotMs int64  `json:"slot_ms"`
		} `json:"by_project"`
		SlotMs int64 `json:"slot_ms"`
	}
	w := get(t, asAdmin(p.Handler()), "/api/v1/summary")
	if w.Code != http.StatusOK {
		t.Fatalf("summary answered %d: %s", w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &sum); err != nil {
		t.Fatal(err)
	}
	if got, want := sum.OldestRunning.Key.JobID, "really_oldest"; got != want {
		t.Errorf("oldest running is %q, want %q", got, want)
	}
	if sum.SlotMs != math.MaxInt64 {
		t.Errorf("summary slot_ms = %d, want the saturated %d", sum.SlotMs, int64(math.MaxInt64))
	}
	for _, g := range sum.ByProject {
		if g.SlotMs < 0 {
			t.Errorf("project %s has a negative slot_ms %d", g.Key, g.SlotMs)
		}
	}
	v, ok := p.store.get(odd.key)
	if !ok {
		t.Fatal("the job with odd statistics is not listed")
	}
	got := []any{v.job.SlotMs, v.job.BytesProcessed, v.job.EndTime}
	if diff := cmp.Diff([]any{(*int64)(nil), (*int64)(nil), time.Time{}}, got); diff != "" {
		t.Errorf("odd statistics kept (-want +got):\n%s", diff)
	}
}
