package running

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// BenchmarkAppendJob measures the JSON of one listed job (a 1 KiB query
// preview), written by appendJob and, for comparison, by encoding/json on
// jobOf: what a list page of 100 or a stream event costs per job.
func BenchmarkAppendJob(b *testing.B) {
	o := &benchOrg{r: rand.New(rand.NewPCG(3, 3)), now: time.Now().UTC()}
	views := make([]view, 64)
	for i := range views {
		evs := o.job(i)
		views[i].job = events.Fold(evs[0].Job, evs)
	}
	const preview = 1024
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 64<<10)
		n := 0
		for b.Loop() {
			v := &views[n%len(views)]
			var ok bool
			if buf, ok = appendJob(buf[:0], &v.job, v.stale, v.hidden, preview); !ok {
				b.Fatal("appendJob refused a job")
			}
			n++
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "jobs/s")
	})
	b.Run("reflection", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			v := &views[n%len(views)]
			if _, err := json.Marshal(jobOf(v, preview)); err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "jobs/s")
	})
}
