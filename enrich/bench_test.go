package enrich_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/enrich"
	"github.com/bqobserver/bqobserver/enrich/jobsapi"
	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/simulation"
)

// scaleOrg is an organization of 1,000 projects that keeps about 10,000
// jobs running once warm (ten simulated minutes), as the simulation's own
// scale benchmark has it.
func scaleOrg() simulation.Config {
	return simulation.Config{Seed: 21, Projects: 1000, Rate: 60, DurationScale: 20, Retention: 30 * time.Minute,
		Formats: []string{simulation.FormatV2}, Delivery: &simulation.Delivery{}}
}

// projectionOnly folds what enrichment appends into the projection
// without writing the log, so that a cycle's cost is enrichment's and
// the API's, not the event log's (BenchmarkAppend measures that).
type projectionOnly struct{ w *world }

func (p projectionOnly) Append(ctx context.Context, evs []events.Event) error {
	return p.w.proj.Apply(ctx, evs...)
}

// cpu is the process's user and system CPU time so far.
func cpu(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCycle runs enrichment cycles, 5 simulated seconds apart, over
// an organization of 1,000 projects with about 10,000 running jobs, and
// reports the calls each cycle makes and the CPU it takes (the process's:
// enrichment, and the simulated API answering it in the same process).
// "api-only" makes the same listings with plain HTTP requests whose
// answers are read and dropped: what the simulated API and the transport
// cost, to subtract.
//
//	go test -run '^$' -bench Cycle -benchtime 20x ./enrich/
func BenchmarkCycle(b *testing.B) {
	w := newWorld(b, scaleOrg())
	w.step(10 * time.Minute)
	s := w.org.Stats()
	b.Logf("%d projects, %d running and %d pending jobs, %d listed", len(w.org.Projects()), s.Running, s.Pending, w.proj.Len())
	api := w.client(jobsapi.Config{QPS: 10000}, nil)
	e := w.enricher(enrich.Config{Interval: interval, Workers: 16}, enrich.Deps{API: api, Appender: projectionOnly{w}})
	e.Cycle(b.Context()) // the first cycle writes every running job's numbers
	b.Run("cycle", func(b *testing.B) {
		var lists, gets, active, wall, cpuTime float64
		for b.Loop() {
			b.StopTimer()
			w.step(interval)
			active += float64(len(w.proj.OpenJobs(func(string) bool { return true })))
			l0, g0, c0, t0 := calls(w.api, simulation.MethodList), calls(w.api, simulation.MethodGet), cpu(b), time.Now()
			b.StartTimer()
			e.Cycle(b.Context())
			b.StopTimer()
			wall += float64(time.Since(t0).Milliseconds())
			cpuTime += float64((cpu(b) - c0).Milliseconds())
			lists, gets = lists+float64(calls(w.api, simulation.MethodList)-l0), gets+float64(calls(w.api, simulation.MethodGet)-g0)
			b.StartTimer()
		}
		n := float64(b.N)
		b.ReportMetric(active/n, "active-projects/cycle")
		b.ReportMetric(lists/n, "lists/cycle")
		b.ReportMetric(gets/n, "gets/cycle")
		b.ReportMetric(cpuTime/n, "cpu-ms/cycle")
		b.ReportMetric(wall/n, "wall-ms/cycle")
	})
	b.Run("api-only", func(b *testing.B) {
		var cpuTime float64
		for b.Loop() {
			b.StopTimer()
			w.step(interval)
			open := w.proj.OpenJobs(func(string) bool { return true })
			c0 := cpu(b)
			b.StartTimer()
			for p := range open {
				listRaw(b, w.url, p)
			}
			b.StopTimer()
			cpuTime += float64((cpu(b) - c0).Milliseconds())
			b.StartTimer()
		}
		b.ReportMetric(cpuTime/float64(b.N), "cpu-ms/cycle")
	})
}

// listRaw lists a project's open jobs, one page of 1,000, as enrichment
// asks, and drops the answer.
func listRaw(b *testing.B, base, project string) {
	resp, err := http.Get(base + "projects/" + project + "/jobs?allUsers=true&stateFilter=pending&stateFilter=running&projection=full&maxResults=1000&alt=json&prettyPrint=false")
	if err != nil {
		b.Fatal(err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("listing %s: %d %v", project, resp.StatusCode, err)
	}
}

// BenchmarkReconcileLatency runs an organization at 20 jobs/s with lost
// completions for half an hour of simulated time, an enrichment cycle
// every 5 s, and reports how long after its end in the API each job whose
// completion was lost, and that was seen listed, left the list (in
// simulated time, so the poll's own duration is not counted: the
// interval's structure is).
//
//	go test -run '^$' -bench ReconcileLatency -benchtime 1x ./enrich/
func BenchmarkReconcileLatency(b *testing.B) {
	for b.Loop() {
		d := simulation.DefaultDelivery()
		d.DelayShare = 0
		w := newWorld(b, simulation.Config{Seed: 41, Rate: 20, Delivery: &d})
		e := w.enricher(enrich.Config{Interval: interval}, enrich.Deps{Registerer: prometheus.NewRegistry()})
		left := map[events.JobKey]time.Duration{}
		listed := map[events.JobKey]bool{} // jobs seen in the list
		see := func() {
			for _, j := range w.proj.OpenJobs(func(string) bool { return true }) {
				for i := range j {
					listed[j[i].Key] = true
				}
			}
		}
		for range int(30 * time.Minute / interval) {
			w.step(interval)
			see()
			e.Cycle(b.Context())
			now := w.org.Now()
			for _, tr := range w.org.LostCompletions() {
				if _, done := left[tr.Job]; !done && listed[tr.Job] && !w.proj.Listed(tr.Job) {
					left[tr.Job] = now.Sub(tr.Ended)
				}
			}
			see()
		}
		var ds []time.Duration
		for _, d := range left {
			ds = append(ds, d)
		}
		slices.Sort(ds)
		if len(ds) < 20 {
			b.Fatalf("only %d lost completions", len(ds))
		}
		cycles := float64(30 * time.Minute / interval)
		b.ReportMetric(float64(calls(w.api, simulation.MethodList))/cycles, "lists/cycle")
		b.ReportMetric(float64(calls(w.api, simulation.MethodGet))/cycles, "gets/cycle")
		b.ReportMetric(float64(len(ds)), "lost-jobs")
		b.ReportMetric(ds[len(ds)/2].Seconds(), "p50-s")
		b.ReportMetric(ds[len(ds)*99/100].Seconds(), "p99-s")
		b.ReportMetric(ds[len(ds)-1].Seconds(), "max-s")
		b.Logf("%d lost completions; from end to leaving the list: %s", len(ds), strconv.Quote(fmtDurations(ds)))
	}
}

func fmtDurations(ds []time.Duration) string {
	counts := map[time.Duration]int{}
	for _, d := range ds {
		counts[d.Truncate(time.Second)]++
	}
	out := ""
	for _, k := range slices.Sorted(mapKeys(counts)) {
		out += k.String() + ":" + strconv.Itoa(counts[k]) + " "
	}
	return out
}
