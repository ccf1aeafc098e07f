package enrich

import (
	"testing"
	"time"

	bq "google.golang.org/api/bigquery/v2"

	"github.com/bqobserver/bqobserver/events"
)

// TestSamplesThinOut: a running job whose numbers change at every poll
// gets a sample at every poll while it is young, and fewer as it ages, so
// that a job of days does not fill its row with samples; what the log does
// not know yet (its start, that it runs) is appended at once, whatever its
// age.
func TestSamplesThinOut(t *testing.T) {
	const poll = 5 * time.Second
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	key := events.JobKey{Project: "p", Location: "US", JobID: "long"}
	j := &events.Job{Key: key, State: events.StateRunning, Facts: events.Facts{CreateTime: start, StartTime: start}, FirstSeen: start, LastSeen: start}
	observe := func(now time.Time, slotMs int64) (events.Event, bool) {
		o, ok := fromListed(&bq.JobListJobs{JobReference: &bq.JobReference{ProjectId: "p", Location: "US", JobId: "long"}, State: "RUNNING",
			Statistics: &bq.JobStatistics{CreationTime: start.UnixMilli(), StartTime: start.UnixMilli(), TotalSlotMs: slotMs}})
		if !ok {
			t.Fatal("not observed")
		}
		return progressEvent(j, &o, now)
	}
	samples := map[time.Duration]int{} // by hour of the job's life
	for now, slot := start.Add(poll), int64(1000); now.Before(start.Add(48 * time.Hour)); now, slot = now.Add(poll), slot+1000 {
		ev, ok := observe(now, slot)
		if !ok {
			continue
		}
		samples[now.Sub(start).Truncate(time.Hour)]++
		j.SlotMs, j.LastSeen = ev.SlotMs, ev.Time
	}
	total := 0
	for _, n := range samples {
		total += n
	}
	t.Logf("samples: first hour %d, second %d, tenth %d, last %d, all %d", samples[0], samples[time.Hour], samples[9*time.Hour], samples[47*time.Hour], total)
	if first, last := samples[0], samples[47*time.Hour]; first < 150 || last > 7 || total > 1000 {
		t.Errorf("a job of two days whose numbers change at every poll got %d samples in its first hour, %d in its last, %d in all; "+
			"want at least 150 in the first (every poll for minutes), at most 6 an hour at the end, at most 1,000 in all", first, last, total)
	}
	// Its start, unknown to the log, is news however recent its last event.
	j.StartTime, j.LastSeen = time.Time{}, start.Add(48*time.Hour)
	if _, ok := observe(start.Add(48*time.Hour+time.Second), 1); !ok {
		t.Error("a start the log lacks waited for the next sample")
	}
}
