package simulation_test

import (
	"iter"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/internal/simulation"
)

// BenchmarkGenerate measures how fast the simulation produces entries in
// virtual time, both formats, default delivery imperfections, on one core:
// go test -run '^$' -bench Generate -cpu 1 ./internal/simulation/
func BenchmarkGenerate(b *testing.B) {
	org, err := simulation.New(simulation.Config{Seed: 1, Rate: 100})
	if err != nil {
		b.Fatal(err)
	}
	next, stop := iter.Pull(org.Generate(1000 * time.Hour))
	defer stop()
	var size int64
	b.ReportAllocs()
	for b.Loop() {
		e, ok := next()
		if !ok {
			b.Fatal("the simulation ran out of entries")
		}
		size += int64(len(e.Data))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(size)/float64(b.N), "bytes/entry")
}
