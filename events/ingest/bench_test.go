package ingest

import (
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/events/auditlog"
	"github.com/bqobserver/bqobserver/internal/testutil/cputest"
)

// BenchmarkIngest measures the rate of the ingest pipeline alone (no
// projection feeds from the events topic; 16 pull streams): b.N job entries
// (both formats, as delivered by a sink) wait on the audit subscription,
// then the pipeline pulls them, appends their events to the log and
// publishes them on the events topic. cpu-ns/entry is the process's CPU
// per entry (on the emulators, the pipeline's alone). `bqobserver load`
// measures the shipped binary end to end. Run it on the emulators:
//
//	PUBSUB_EMULATOR_HOST=… BIGTABLE_EMULATOR_HOST=… go test -run '^$' -bench Ingest -benchtime 20000x ./events/ingest/
func BenchmarkIngest(b *testing.B) {
	c := newCorpus(b, b.N, 13)
	// Only job entries: the rate that matters is that of appended entries,
	// not of entries skipped or dead-lettered without a write.
	var entries [][]byte
	for _, e := range c.entries {
		if evs, err := auditlog.Decode(e); err == nil && len(evs) > 0 {
			entries = append(entries, e)
		}
	}
	h := newHarness(b, harnessOpts{later: true})
	h.publish(entries)
	b.ResetTimer()
	start, cpu := time.Now(), cputest.Used(b)
	h.start(harnessOpts{pull: true})
	waitFor(b, 10*time.Minute, "the backlog to drain", func() bool { return h.settled() >= len(entries) })
	elapsed, cpu := time.Since(start), cputest.Used(b)-cpu
	b.StopTimer()
	if got := h.outcomes()["appended"]; got < len(entries) {
		b.Fatalf("%d of %d entries appended", got, len(entries))
	}
	b.ReportMetric(float64(len(entries))/elapsed.Seconds(), "appended-entries/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(len(entries)), "cpu-ns/entry")
}
