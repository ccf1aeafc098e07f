package ingest

import (
	"testing"
	"time"
)

// BenchmarkIngest measures the end-to-end ingest rate: b.N entries (both
// formats, as delivered by a sink) wait on the audit subscription, then the
// pipeline pulls them, appends their events to the log and publishes them
// on the events topic. Run it on the emulators for the number the README
// quotes:
//
//	PUBSUB_EMULATOR_HOST=… BIGTABLE_EMULATOR_HOST=… go test -run '^$' -bench Ingest -benchtime 20000x ./events/ingest/
func BenchmarkIngest(b *testing.B) {
	c := newCorpus(b, b.N, 13)
	// Only job entries: the rate that matters is that of appended entries.
	var entries [][]byte
	for _, e := range c.entries {
		if _, bad := c.malformed[string(e)]; !bad {
			entries = append(entries, e)
		}
	}
	h := newHarness(b, harnessOpts{later: true})
	h.publish(entries)
	b.ResetTimer()
	start := time.Now()
	h.start(harnessOpts{pull: true})
	waitFor(b, 10*time.Minute, "the backlog to drain", func() bool { return h.settled() >= len(entries) })
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(len(entries))/elapsed.Seconds(), "entries/s")
}
