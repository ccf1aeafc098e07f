package running

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// benchJobs is the size of the organization the benchmarks load.
const benchJobs = 100_000

// benchOrg makes the jobs of a large organization: 300 projects, 2,000
// users, 40 reservations, 8 locations; every string is allocated for its job,
// as decoding would.
type benchOrg struct {
	r          *rand.Rand
	now        time.Time
	queryBytes int // 0 for queries of their natural length (100-400 bytes)
}

var (
	benchTables = []string{"orders", "customers", "events", "sessions", "clicks", "invoices", "inventory", "payments"}
	benchVerbs  = []string{"SELECT", "MERGE", "INSERT", "CREATE_TABLE_AS_SELECT", "UPDATE"}
	benchLocs   = []string{"US", "EU", "europe-west4", "us-central1", "asia-northeast1", "europe-west1", "us-east4", "australia-southeast1"}
)

func (o *benchOrg) key(i int) events.JobKey {
	return events.JobKey{Project: fmt.Sprintf("acme-project-%03d", i%300), Location: benchLocs[i%len(benchLocs)],
		JobID: fmt.Sprintf("bquxjob_%08x_%011x", o.r.Uint32(), o.r.Uint64()>>20)}
}

func (o *benchOrg) query(i int) string {
	t1, t2 := benchTables[o.r.IntN(len(benchTables))], benchTables[o.r.IntN(len(benchTables))]
	q := fmt.Sprintf("SELECT c.customer_id, SUM(o.amount) AS revenue, COUNT(*) AS n\nFROM `acme-project-%03d.sales.%s` o\n"+
		"JOIN `acme-project-%03d.core.%s` c USING (customer_id)\nWHERE o.day >= DATE_SUB(CURRENT_DATE(), INTERVAL %d DAY) AND o.tag = 'run-%d'\n"+
		"GROUP BY 1 ORDER BY revenue DESC", o.r.IntN(300), t1, o.r.IntN(300), t2, 1+o.r.IntN(90), i)
	if o.queryBytes > len(q) {
		q += "\n-- " + strings.Repeat("padding ", (o.queryBytes-len(q))/8)
	}
	return strings.Clone(q)
}

// job returns the events of one running (one in six: queued) job.
func (o *benchOrg) job(i int) []events.Event {
	s := &story{key: o.key(i)}
	created := o.now.Add(-time.Duration(o.r.Int64N(int64(5 * time.Hour))))
	f := events.Facts{
		Principal: fmt.Sprintf("user-%04d@acme.example", o.r.IntN(2000)), Reservation: fmt.Sprintf("admin:US.res-%02d", o.r.IntN(40)),
		JobType: events.JobTypeQuery, StatementType: benchVerbs[o.r.IntN(len(benchVerbs))], Priority: "INTERACTIVE", Query: o.query(i),
		Labels:           map[string]string{"team": fmt.Sprintf("team-%d", o.r.IntN(50)), "env": "prod"},
		ReferencedTables: []string{fmt.Sprintf("acme-project-%03d.sales.%s", o.r.IntN(300), benchTables[o.r.IntN(len(benchTables))])},
	}
	evs := []events.Event{s.inserted(created, events.StatePending, f)}
	if i%6 == 0 {
		return evs
	}
	start := created.Add(time.Duration(o.r.IntN(60)) * time.Second)
	return append(evs, s.started(start), s.progress(start.Add(time.Second), o.r.Int64N(1e10), o.r.Int64N(1e13)))
}

// loaded returns a ready projection holding n running jobs.
func loaded(b *testing.B, n, queryBytes int) (*Projection, *benchOrg) {
	b.Helper()
	now := time.Now().UTC()
	p, _ := newProjection(b, nil, now, Config{})
	o := &benchOrg{r: rand.New(rand.NewPCG(1, 1)), now: now, queryBytes: queryBytes}
	for i := range n {
		evs := o.job(i)
		p.store.applyHistory(evs[0].Job, evs, now) // as the rebuild does: these jobs started hours ago
	}
	p.store.awaitIndex()
	return p, o
}

// BenchmarkApply measures the rate at which live events fold into a list of
// 100,000 running jobs: a steady mix of progress samples of listed jobs,
// new jobs and completions; with no order index, and with one for every
// order of the running list (as after pages asked in each), whose dirty
// jobs the folds mark.
func BenchmarkApply(b *testing.B) {
	for _, indexed := range []bool{false, true} {
		b.Run(fmt.Sprintf("order-indexes=%t", indexed), func(b *testing.B) { benchmarkApply(b, indexed) })
	}
}

func benchmarkApply(b *testing.B, orderIndexes bool) {
	p, o := loaded(b, benchJobs, 0)
	if orderIndexes {
		for _, key := range runningKind.sorts {
			for _, desc := range []bool{false, true} {
				ord := order{key: key, desc: desc}
				x, next := p.store.startOrderCopy(ord)
				p.store.copyOrder(ord, next)
				p.store.finishOrderCopy(x, next)
			}
		}
	}
	keys := make([]events.JobKey, 0, benchJobs)
	for k := range p.store.jobs {
		keys = append(keys, k)
	}
	stream := make([]events.Event, 0, 1<<16)
	for i := range cap(stream) {
		switch i % 10 {
		case 0: // a new job
			ev := o.job(benchJobs + i)[0]
			ev.Time, ev.CreateTime = o.now, o.now
			stream = append(stream, ev)
		case 1: // a completion
			s := &story{key: keys[o.r.IntN(len(keys))], n: 1_000_000 + i}
			stream = append(stream, s.completed(o.now))
		default: // a progress sample
			s := &story{key: keys[o.r.IntN(len(keys))], n: 1_000_000 + i}
			stream = append(stream, s.progress(o.now.Add(time.Duration(i)*time.Millisecond), int64(i)*1000, int64(i)<<20))
		}
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if err := p.apply(b.Context(), &stream[i%len(stream)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkList measures list requests through the HTTP handler (parsing,
// the scan, the page and its JSON) over 100,000 running jobs while the live
// feed writes 2,000 events a second, and reports p50 and p99.
func BenchmarkList(b *testing.B) {
	p, o := loaded(b, benchJobs, 0)
	h := asAdmin(p.Handler())
	queries := []struct{ name, query string }{
		{"filtered-searched-sorted", "state=running&location=US&q=orders+revenue&sort=-slot_ms&limit=100"},
		{"project-searched", "project=acme-project-042&q=customers&sort=-running&limit=100"},
		{"search-only-all-jobs", "q=run-4242&limit=100"},
		{"unfiltered-page-of-500", "sort=-running&limit=500"},
		{"label-and-user", "label=team=team-7&user=user-0042@acme.example&limit=100"},
	}
	stop := writer(b, p, o, 2000)
	defer stop()
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				r := httptest.NewRequest(http.MethodGet, "/api/v1/jobs?"+q.query, nil)
				w := &discard{header: http.Header{}}
				start := time.Now()
				h.ServeHTTP(w, r)
				lat = append(lat, time.Since(start))
				if w.code != http.StatusOK {
					b.Fatalf("%s: %d", q.query, w.code)
				}
			}
			reportPercentiles(b, lat)
		})
	}
}

// BenchmarkSummary measures the summary over 100,000 running jobs.
func BenchmarkSummary(b *testing.B) {
	p, _ := loaded(b, benchJobs, 0)
	h := asAdmin(p.Handler())
	var lat []time.Duration
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/summary", nil)
		start := time.Now()
		h.ServeHTTP(&discard{header: http.Header{}}, r)
		lat = append(lat, time.Since(start))
	}
	reportPercentiles(b, lat)
}

// discard is a ResponseWriter that keeps nothing but the status, as a
// socket would send the body on.
type discard struct {
	header http.Header
	code   int
}

func (d *discard) Header() http.Header { return d.header }
func (d *discard) Write(b []byte) (int, error) {
	if d.code == 0 {
		d.code = http.StatusOK
	}
	return len(b), nil
}
func (d *discard) WriteHeader(code int) { d.code = code }

// writer applies progress samples at rate events a second until stopped.
func writer(b *testing.B, p *Projection, o *benchOrg, rate int) (stop func()) {
	keys := make([]events.JobKey, 0, len(p.store.jobs))
	for k := range p.store.jobs {
		keys = append(keys, k)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-t.C:
			}
			s := &story{key: keys[i%len(keys)], n: 2_000_000 + i}
			ev := s.progress(o.now.Add(time.Duration(i)*time.Millisecond), int64(i), int64(i))
			if err := p.apply(b.Context(), &ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	at := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// BenchmarkHeapPerJob measures the live heap a running job costs once the
// list holds 100,000 of them (the ring of recent changes included), after a
// full garbage collection. queries-1KiB pads every query to 1 KiB, the most
// the budget counts.
func BenchmarkHeapPerJob(b *testing.B) {
	for _, c := range []struct {
		name       string
		queryBytes int
	}{{"natural-queries", 0}, {"queries-1KiB", 1024}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				before := liveHeap()
				p, _ := loaded(b, benchJobs, c.queryBytes)
				after := liveHeap()
				b.ReportMetric(float64(after-before)/float64(p.Len()), "B/job")
				runtime.KeepAlive(p)
			}
		})
	}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkRebuild measures a rebuild of 100,000 running jobs from the event
// log: bttest, or the Bigtable emulator when BIGTABLE_EMULATOR_HOST is set.
func BenchmarkRebuild(b *testing.B) {
	l := newLog(b)
	o := &benchOrg{r: rand.New(rand.NewPCG(2, 2)), now: time.Now().UTC()}
	var batch []events.Event
	for i := range benchJobs {
		batch = append(batch, o.job(i)...)
		if len(batch) >= 3000 || i == benchJobs-1 {
			if err := l.Append(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	var ready time.Duration
	for b.Loop() {
		start := time.Now()
		p, err := New(Config{Now: func() time.Time { return o.now }}, l, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Rebuild(b.Context()); err != nil {
			b.Fatal(err)
		}
		ready += time.Since(start)
		if p.Len() != benchJobs {
			b.Fatalf("rebuilt %d jobs, want %d", p.Len(), benchJobs)
		}
		p.store.awaitIndex()
	}
	b.ReportMetric(ready.Seconds()/float64(b.N), "s/ready")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/rebuild")
}

// BenchmarkIndexAll measures building the word index of 100,000 running
// jobs at once, as a rebuild does at its end: with one worker and with the
// workers the store uses (one per CPU).
func BenchmarkIndexAll(b *testing.B) {
	p, _ := loaded(b, benchJobs, 0)
	texts := jobTexts(p.store.slots)
	for _, workers := range []int{1, indexWorkers(len(texts))} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			for b.Loop() {
				indexAll(texts, workers)
			}
		})
	}
}

// BenchmarkIndexChurn measures the word index's upkeep as jobs come and go:
// with 100,000 jobs indexed, each op lists a new job (its own job id, a
// query with a tag of its own) and takes the oldest out, as the running
// list does when a job finishes.
func BenchmarkIndexChurn(b *testing.B) {
	o := &benchOrg{r: rand.New(rand.NewPCG(1, 1)), now: time.Now()}
	const n = benchJobs
	texts := make([]searchText, 2*n)
	for i := range texts {
		var j events.Job
		for _, e := range o.job(i) {
			j.Apply(&e)
		}
		texts[i] = searchTextOf(&j)
	}
	x := newSearchIndex()
	for i := range n {
		x.add(uint32(i), &texts[i])
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		old := i % n // the job id of the oldest, which the new job takes
		x.remove(uint32(old), &texts[i%len(texts)])
		x.add(uint32(old), &texts[(i+n)%len(texts)])
		i++
	}
}
