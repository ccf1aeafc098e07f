package history

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/simulation"
	"github.com/bqobserver/bqobserver/schema"
)

// BenchmarkSinkRows writes the versions of simulated jobs into the
// emulator twice in the same run: through the sink (for each job's
// completion: read its events from the log, fold, derive, encode, batch,
// append), and as raw managedwriter appends of the same rows in batches of
// the sink's size, as many in flight. It reports both rates and their
// ratio.
//
//	BIGQUERY_EMULATOR_HOST=… BIGQUERY_STORAGE_EMULATOR_HOST=… go test -run '^$' -bench SinkRows -benchtime 1x ./projections/history/
func BenchmarkSinkRows(b *testing.B) {
	sim := simulate(b, simulation.Config{Seed: 21, Rate: 2, Projects: 20}, 30*time.Minute)
	var last []events.Event // one event a job: what makes a row
	seen := map[events.JobKey]bool{}
	for i := len(sim.events) - 1; i >= 0; i-- {
		if e := sim.events[i]; !seen[e.Job] {
			seen[e.Job] = true
			last = append(last, e)
		}
	}
	log := newLog(b, sim.events...)
	for b.Loop() {
		raw, sink := newEmulated(b), newEmulated(b)
		s := sink.sinkWith(b, log, nil, Config{})
		start := time.Now()
		g := errgroup.Group{}
		g.SetLimit(2000)
		for _, e := range last {
			g.Go(func() error { return s.Handle(context.Background(), e) })
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		sinkRate := float64(len(last)) / time.Since(start).Seconds()

		rows := versions(b, s, log, last)
		start = time.Now()
		rawAppend(b, raw, s.v.rows.proto, rows)
		rawRate := float64(len(rows)) / time.Since(start).Seconds()
		b.ReportMetric(sinkRate, "sink-rows/s")
		b.ReportMetric(rawRate, "raw-rows/s")
		b.ReportMetric(100*sinkRate/rawRate, "%-of-raw")
	}
}

// versions encodes the versions the sink wrote.
func versions(b *testing.B, s *Sink, log Log, evs []events.Event) [][]byte {
	var rows [][]byte
	for _, e := range evs {
		all, err := log.JobEvents(context.Background(), e.Job)
		if err != nil {
			b.Fatal(err)
		}
		j, d := s.v.version(e.Job, all)
		row, err := s.v.rows.encode(&j, &d)
		if err != nil {
			b.Fatal(err)
		}
		rows = append(rows, row)
	}
	return rows
}

// rawAppend appends rows to the emulated history's table with the
// managedwriter client alone: appends of 500 rows, 8 in flight, as the
// sink's writer does by default.
func rawAppend(b *testing.B, em *emulated, desc *descriptorpb.DescriptorProto, rows [][]byte) {
	b.Helper()
	ms, err := em.bq.Write.NewManagedStream(context.Background(),
		managedwriter.WithDestinationTable(managedwriter.TableParentFromParts(em.b.Project, em.b.Dataset, schema.JobVersionsTable)),
		managedwriter.WithType(managedwriter.DefaultStream), managedwriter.WithSchemaDescriptor(desc))
	if err != nil {
		b.Fatal(err)
	}
	defer ms.Close()
	g := errgroup.Group{}
	g.SetLimit(8)
	for batch := range slices.Chunk(rows, 500) {
		g.Go(func() error {
			res, err := ms.AppendRows(context.Background(), batch)
			if err == nil {
				_, err = res.GetResult(context.Background())
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFreshness publishes jobs one at a time through the service's
// path (appender, events topic, consumer, sink) into the emulator, and
// polls the jobs view for them: the time from an event's publication to its
// job's row being visible there, p50 and p99.
//
//	BIGQUERY_EMULATOR_HOST=… BIGQUERY_STORAGE_EMULATOR_HOST=… go test -run '^$' -bench Freshness -benchtime 1x ./projections/history/
func BenchmarkFreshness(b *testing.B) {
	for b.Loop() {
		em := newEmulated(b)
		log := newLog(b)
		s := em.sinkWith(b, log, nil, Config{})
		fd := startFeed(b, log, s.Handle)
		const jobs, every = 300, 50 * time.Millisecond
		published := make(map[string]time.Time, jobs)
		var mu sync.Mutex
		seen := map[string]time.Time{}
		stop := make(chan struct{})
		var poll sync.WaitGroup
		poll.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				rows, _ := em.tryQuery(context.Background(), "SELECT job_id FROM "+em.b.Table(schema.JobsView)) // busy: ask again
				for _, r := range rows {
					mu.Lock()
					if id := r["job_id"].(string); seen[id].IsZero() {
						seen[id] = time.Now()
					}
					mu.Unlock()
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
		for i := range jobs {
			evs := queryJob(fmt.Sprintf("fresh_%03d", i), doneFacts(1<<30), nil)[2:]
			mu.Lock()
			published[evs[0].Job.JobID] = time.Now()
			mu.Unlock()
			fd.append(evs)
			time.Sleep(every)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			mu.Lock()
			n := len(seen)
			mu.Unlock()
			if n == jobs || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		close(stop)
		poll.Wait()
		var lat []time.Duration
		for id, at := range published {
			if s, ok := seen[id]; ok {
				lat = append(lat, s.Sub(at))
			}
		}
		if len(lat) < jobs {
			b.Fatalf("%d of %d jobs visible", len(lat), jobs)
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
	}
}

// BenchmarkReplayDay replays a simulated day of about 50,000 entries from
// the log (bttest, or cbtemulator with BIGTABLE_EMULATOR_HOST) into the
// emulator: its time and rows per second.
//
//	BIGQUERY_EMULATOR_HOST=… BIGQUERY_STORAGE_EMULATOR_HOST=… go test -run '^$' -bench ReplayDay -benchtime 1x -timeout 30m ./projections/history/
func BenchmarkReplayDay(b *testing.B) {
	sim := simulate(b, simulation.Config{Seed: 1, Rate: 0.125}, 24*time.Hour)
	log := newLog(b, sim.events...)
	b.Logf("a simulated day: %d events", len(sim.events))
	for b.Loop() {
		em := newEmulated(b)
		s := em.sinkWith(b, log, nil, Config{})
		start := time.Now()
		stats, err := s.Replay(context.Background(), ReplayOptions{From: time.Unix(0, 0), To: time.Now().Add(24 * time.Hour)})
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		b.ReportMetric(took.Seconds(), "s/day")
		b.ReportMetric(float64(stats.Written)/took.Seconds(), "rows/s")
		b.ReportMetric(float64(stats.Events), "events")
		b.ReportMetric(float64(stats.Written), "rows")
	}
}

// BenchmarkRowSize writes, without BigQuery, the version of a job for each
// event of a simulated day of about 50,000 entries, as the sink does (a
// progress sample of a running job makes none): how many versions a job
// has, and their size, serialized (what the Storage Write API ingests) and
// as BigQuery counts storage (logical bytes). The README's cost of the
// history follows from these.
//
//	go test -run '^$' -bench RowSize -benchtime 1x ./projections/history/
func BenchmarkRowSize(b *testing.B) {
	sim := simulate(b, simulation.Config{Seed: 1, Rate: 0.125}, 24*time.Hour)
	v, err := newVersioner(Config{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		byJob := map[events.JobKey][]events.Event{}
		var rows, serialized, logical int
		for _, e := range sim.events {
			byJob[e.Job] = append(byJob[e.Job], e)
			j, d := v.version(e.Job, byJob[e.Job])
			if e.Kind == events.KindProgress && !j.Done() {
				continue
			}
			row, err := v.rows.encode(&j, &d)
			if err != nil {
				b.Fatal(err)
			}
			rows, serialized = rows+1, serialized+len(row)
			logical += logicalSize(values(v.rows.message(&j, &d), v.rows.schema), v.rows.schema)
		}
		b.ReportMetric(float64(rows)/float64(len(byJob)), "versions/job")
		b.ReportMetric(float64(serialized)/float64(rows), "serialized-B/row")
		b.ReportMetric(float64(logical)/float64(rows), "logical-B/row")
	}
}

// logicalSize is a row's size as BigQuery bills storage: 2 bytes plus the
// text of a STRING, 1 for a BOOL, 8 for a number or a TIMESTAMP, the sum of
// its fields for a RECORD and of its values for a repeated column, nothing
// for NULL.
func logicalSize(r Row, s bigquery.Schema) int {
	n := 0
	for _, f := range s {
		n += valueSize(r[f.Name], f)
	}
	return n
}

func valueSize(v any, f *bigquery.FieldSchema) int {
	switch v := v.(type) {
	case nil:
		return 0
	case []any:
		n := 0
		for _, e := range v {
			n += valueSize(e, f)
		}
		return n
	case map[string]any:
		return logicalSize(v, f.Schema)
	case string:
		return 2 + len(v)
	case bool:
		return 1
	}
	return 8
}
