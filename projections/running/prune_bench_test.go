package running

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/simulation"
)

// backlogEntries is the size of the backlog BenchmarkRebuildAfterBacklog
// drains before it restarts.
const backlogEntries = 300_000

// BenchmarkRebuildAfterBacklog measures the first rebuild after a run that
// drained a 300,000-entry backlog (bttest, or the Bigtable emulator when
// BIGTABLE_EMULATOR_HOST is set). The backlog is a simulated organization's
// entries at 50 jobs/s with the default delivery imperfections, delivered
// out of order as a subscription drains a backlog (shuffled within blocks
// of 20,000 entries): many events arrive after their job's DONE and
// re-open it in the open-jobs index. Ingest and the live feed run as in
// the service (each batch appended, then applied by the projection, which
// prunes what it finds finished once a second). Then a new projection
// rebuilds from the log, as a restarted replica does; run it with
// -benchtime 1x, so that the rebuild measured is the first on that log.
// It reports the index's size beside the listed jobs.
func BenchmarkRebuildAfterBacklog(b *testing.B) {
	now := time.Now().UTC().Truncate(time.Second)
	org, err := simulation.New(simulation.Config{Seed: 5, Rate: 50, Start: now.Add(-2 * time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	l := newLog(b)
	p, clk := newProjection(b, l, now.Add(-2*time.Hour), Config{})
	var entries []simulation.Entry
	for e := range org.Generate(2 * time.Hour) {
		if entries = append(entries, e); len(entries) == backlogEntries {
			break
		}
	}
	r := rand.New(rand.NewPCG(5, 5))
	const block = 20_000
	for i := 0; i < len(entries); i += block {
		part := entries[i:min(i+block, len(entries))]
		r.Shuffle(len(part), func(x, y int) { part[x], part[y] = part[y], part[x] })
	}
	var batch []events.Event
	lastPrune := clk.Now()
	for i, e := range entries {
		batch = append(batch, e.Meant...)
		if len(batch) < 500 && i < len(entries)-1 {
			continue
		}
		if err := l.Append(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
		if err := p.Apply(b.Context(), batch...); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
		clk.Advance(e.Published.Sub(clk.Now()))
		if clk.Now().Sub(lastPrune) >= time.Second {
			p.pruner.flush(b.Context())
			lastPrune = clk.Now()
		}
	}
	p.pruner.flush(b.Context())
	open := 0
	if err := l.OpenJobs(b.Context(), func(events.JobKey) error { open++; return nil }); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		q, err := New(Config{Now: clk.Now}, l, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := q.Rebuild(b.Context()); err != nil {
			b.Fatal(err)
		}
		if q.Len() != p.Len() {
			b.Fatalf("rebuilt %d jobs, want the %d listed before the restart", q.Len(), p.Len())
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/rebuild")
	b.ReportMetric(float64(open), "index-entries")
	b.ReportMetric(float64(p.Len()), "listed-jobs")
}
