package events

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkFold measures Job.Apply over the life of a query job as the
// projection sees it: inserted, started, ten progress samples, completed.
func BenchmarkFold(b *testing.B) {
	evs := benchLife()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		j := Job{Key: key}
		for i := range evs {
			j.Apply(&evs[i])
		}
		n += len(evs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func benchLife() []Event {
	t := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	id := func(i int) string { return DerivedEventID("bench", fmt.Sprint(i)) }
	evs := []Event{
		{ID: id(0), Kind: KindInserted, Job: key, Time: t, State: StatePending, Facts: Facts{
			Principal: "user-0042@acme.example", JobType: JobTypeQuery, StatementType: "SELECT", Priority: "INTERACTIVE",
			Query: "SELECT customer_id, SUM(amount) FROM `acme.sales.orders` GROUP BY 1", Reservation: "admin:US.res-07",
			Labels: map[string]string{"team": "team-7", "env": "prod"}, ReferencedTables: []string{"acme.sales.orders"}, CreateTime: t}},
		{ID: id(1), Kind: KindStateChanged, Job: key, Time: t.Add(time.Second), State: StateRunning, Facts: Facts{StartTime: t.Add(time.Second)}},
	}
	for i := range 10 {
		at := t.Add(time.Duration(2+i) * time.Second)
		evs = append(evs, Event{ID: id(2 + i), Kind: KindProgress, Job: key, Time: at, State: StateRunning, Facts: Facts{
			SlotMs: Int64(int64(i) * 1000), BytesProcessed: Int64(int64(i) << 20),
			Progress: Progress{ActiveUnits: Int64(2), CompletedUnits: Int64(int64(i)), PendingUnits: Int64(10)}}})
	}
	end := t.Add(15 * time.Second)
	return append(evs, Event{ID: id(12), Kind: KindCompleted, Job: key, Time: end, State: StateDone, Facts: Facts{
		EndTime: end, SlotMs: Int64(12000), BytesProcessed: Int64(12 << 20), BytesBilled: Int64(13 << 20), CacheHit: Bool(false)}})
}
