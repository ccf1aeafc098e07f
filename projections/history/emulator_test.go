package history

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/api/iterator"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/simulation"
	"github.com/bqobserver/bqobserver/internal/testutil/bqtest"
	"github.com/bqobserver/bqobserver/schema"
)

// emulated is a history in the BigQuery emulator, in a dataset of the
// test's own, set up by ApplyBigQuery.
type emulated struct {
	bq *bqtest.BigQuery
	b  schema.BigQuery
}

func newEmulated(t testing.TB) *emulated {
	t.Helper()
	bq := bqtest.New(t)
	e := &emulated{bq: bq, b: schema.BigQuery{Project: bqtest.Project, Dataset: bq.Dataset, Location: "US"}}
	if err := schema.ApplyBigQuery(t.Context(), bq.Client, e.b); err != nil {
		t.Fatal(err)
	}
	return e
}

// sink returns a sink of log writing through client (the emulator's when
// nil, or one through a proxy), closed with the test.
func (e *emulated) sink(t testing.TB, log Log, client *managedwriter.Client) *Sink {
	t.Helper()
	return e.sinkWith(t, log, client, Config{Writer: WriterConfig{FlushInterval: 200 * time.Millisecond}})
}

// sinkWith is sink with a config of its own (the benchmarks': the
// defaults).
func (e *emulated) sinkWith(t testing.TB, log Log, client *managedwriter.Client, cfg Config) *Sink {
	t.Helper()
	if client == nil {
		client = e.bq.Write
	}
	s, err := New(cfg, log, Destination{Client: client, BigQuery: e.b}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// check compares the jobs view with every job of log.
func (e *emulated) check(t testing.TB, log Log) (CheckStats, []Difference) {
	t.Helper()
	stats, diffs, err := e.tryCheck(t, log)
	if err != nil {
		t.Fatal(err)
	}
	return stats, diffs
}

func (e *emulated) tryCheck(t testing.TB, log Log) (CheckStats, []Difference, error) {
	t.Helper()
	c, err := NewChecker(Config{}, log, NewJobsView(e.bq.Client, e.b))
	if err != nil {
		t.Fatal(err)
	}
	return c.Check(t.Context(), time.Unix(0, 0), time.Now().Add(24*time.Hour), "")
}

// waitHandled waits until the sink has handled n events for good, without
// querying the emulator meanwhile (a query holds its SQLite database,
// which slows every append down).
func waitHandled(t testing.TB, s *Sink, n int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("the sink to handle %d events", n), func() bool {
		return counter(s.metrics.rows.WithLabelValues(outcomeWritten))+counter(s.metrics.rows.WithLabelValues(outcomeSkipped)) >= float64(n)
	})
}

// waitConsistent waits until the jobs view agrees with the log on every
// job, and returns what the last check found. A query the emulator fails
// while the sink writes (its SQLite database is locked) is tried again.
func (e *emulated) waitConsistent(t testing.TB, log Log, within time.Duration) (CheckStats, []Difference) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		stats, diffs, err := e.tryCheck(t, log)
		switch {
		case err != nil && time.Now().After(deadline):
			t.Fatal(err)
		case err == nil && (len(diffs) == 0 || time.Now().After(deadline)):
			return stats, diffs
		}
		time.Sleep(time.Second)
	}
}

// query returns the rows of sql, each a map of column values.
func (e *emulated) query(t testing.TB, sql string) []Row {
	t.Helper()
	rows, err := e.tryQuery(t.Context(), sql)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func (e *emulated) tryQuery(ctx context.Context, sql string) ([]Row, error) {
	it, err := e.bq.Client.Query(sql).Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sql, err)
	}
	var out []Row
	for {
		var vals map[string]bigquery.Value
		err := it.Next(&vals)
		if err == iterator.Done {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sql, err)
		}
		r := Row{}
		for k, v := range vals {
			r[k] = fromBigQuery(v)
		}
		out = append(out, r)
	}
}

// simulated is a simulated organization's activity: its events in the
// order the sink delivers their entries, and the organization, which knows
// what really happened.
type simulated struct {
	org    *simulation.Org
	events []events.Event
	end    time.Time
}

func simulate(t testing.TB, cfg simulation.Config, d time.Duration) simulated {
	t.Helper()
	if cfg.Retention == 0 {
		cfg.Retention = 2 * d
	}
	org, err := simulation.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var evs []events.Event
	for e := range org.Generate(d) {
		evs = append(evs, e.Meant...)
	}
	return simulated{org: org, events: evs, end: org.Now()}
}

// jobs returns the distinct jobs of evs.
func jobs(evs []events.Event) []events.JobKey {
	seen := map[events.JobKey]bool{}
	var out []events.JobKey
	for _, e := range evs {
		if !seen[e.Job] {
			seen[e.Job] = true
			out = append(out, e.Job)
		}
	}
	slices.SortFunc(out, compareKeys)
	return out
}

// TestSimulatedDayThroughTheSink runs a simulated day of an organization
// through the service's path (appender, events topic, consumer, sink,
// BigQuery emulator), once with every entry delivered once in order, once
// with every entry delivered one to three times in shuffled order. Each time
// the jobs view has exactly one row per job the log knows, with the fold's
// final values, and nothing is dead-lettered; the two histories are the
// same, but for when their rows were written; and they agree with what the
// simulation says happened.
func TestSimulatedDayThroughTheSink(t *testing.T) {
	bqtest.RequireEmulator(t)
	day := simulate(t, simulation.Config{Seed: 11, Rate: 0.01, Projects: 20}, 24*time.Hour)
	keys := jobs(day.events)
	t.Logf("a simulated day: %d events of %d jobs", len(day.events), len(keys))
	histories := map[string][]Row{}
	for _, run := range []struct {
		name    string
		deliver func([]events.Event) []events.Event
	}{
		{"each entry once, in order", func(evs []events.Event) []events.Event { return evs }},
		{"each entry one to three times, shuffled", func(evs []events.Event) []events.Event { return redelivered(evs, 5) }},
	} {
		t.Run(run.name, func(t *testing.T) {
			em := newEmulated(t)
			log := newLog(t)
			s := em.sink(t, log, em.bq.Write)
			fd := startFeed(t, log, s.Handle)
			delivered := run.deliver(day.events)
			start := time.Now()
			fd.append(delivered)
			waitHandled(t, s, len(delivered))
			t.Logf("%d events through the sink in %v", len(delivered), time.Since(start))
			stats, diffs := em.waitConsistent(t, log, time.Minute)
			if diff := cmp.Diff(CheckStats{Jobs: len(keys)}, stats); diff != "" || len(diffs) > 0 {
				t.Errorf("check (-want +got):\n%s\nfirst differences: %+v", diff, diffs[:min(len(diffs), 3)])
			}
			rows := em.query(t, "SELECT * EXCEPT (version_time) FROM "+em.b.Table(schema.JobsView))
			slices.SortFunc(rows, func(a, b Row) int { return compareKeys(keyOf(a), keyOf(b)) })
			var got []events.JobKey
			for _, r := range rows {
				got = append(got, keyOf(r))
			}
			if diff := cmp.Diff(keys, got); diff != "" {
				t.Errorf("jobs in the jobs view (-log +view):\n%s", diff)
			}
			if dead := fd.deadLetters(time.Second); len(dead) > 0 {
				t.Errorf("%d events dead-lettered; want none: %v", len(dead), dead)
			}
			checkAgainstTruth(t, day, rows)
			histories[run.name] = rows
		})
	}
	if len(histories) == 2 {
		if diff := cmp.Diff(histories["each entry once, in order"], histories["each entry one to three times, shuffled"]); diff != "" {
			t.Errorf("the history depends on how the entries were delivered (-once +redelivered):\n%s", diff)
		}
	}
}

// checkAgainstTruth compares the jobs view's rows with what the simulation
// says happened to each job that ended ten minutes before the day did (its
// completion entries have arrived, unless they were lost).
func checkAgainstTruth(t *testing.T, day simulated, rows []Row) {
	t.Helper()
	checked := 0
	for _, r := range rows {
		truth, ok := day.org.Job(keyOf(r))
		if !ok {
			t.Errorf("job %s is in the history but the simulation never ran it", keyOf(r))
			continue
		}
		if truth.State != events.StateDone || truth.LostCompletion || truth.Ended.After(day.end.Add(-10*time.Minute)) {
			continue
		}
		checked++
		want := Row{"state": "DONE", "creation_time": truth.Created, "end_time": truth.Ended}
		got := Row{"state": r["state"], "creation_time": r["creation_time"], "end_time": r["end_time"]}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("job %s (-simulation +history):\n%s", keyOf(r), diff)
		}
	}
	if checked < len(rows)/2 {
		t.Errorf("only %d of %d jobs could be checked against the simulation", checked, len(rows))
	}
}

// TestLateEventUpdatesItsRow: a cancel request that comes after a job
// finished writes a new version of the job, which the jobs view shows.
func TestLateEventUpdatesItsRow(t *testing.T) {
	em := newEmulated(t)
	log := newLog(t)
	fd := startFeed(t, log, em.sink(t, log, em.bq.Write).Handle)
	evs := append(queryJob("late_1", doneFacts(1<<30), nil), queryJob("late_2", doneFacts(1<<20), nil)...)
	fd.append(evs)
	if _, diffs := em.waitConsistent(t, log, time.Minute); len(diffs) > 0 {
		t.Fatalf("before the late event: %+v", diffs)
	}
	late := events.Event{ID: "late_1-cancel", Kind: events.KindCancelRequested, Job: evs[0].Job, Time: t0.Add(time.Hour),
		Source: events.Source{Format: "operator"}}
	fd.append([]events.Event{late})
	stats, diffs := em.waitConsistent(t, log, time.Minute)
	if len(diffs) > 0 || stats.Jobs != 2 {
		t.Fatalf("after the late event: %+v %+v", stats, diffs)
	}
	got := em.query(t, "SELECT job_id, state, cancel_requested, event_count, last_seen FROM "+em.b.Table(schema.JobsView)+" ORDER BY job_id")
	want := []Row{
		{"job_id": "late_1", "state": "DONE", "cancel_requested": true, "event_count": int64(4), "last_seen": t0.Add(time.Hour)},
		{"job_id": "late_2", "state": "DONE", "cancel_requested": false, "event_count": int64(3), "last_seen": t0.Add(9 * time.Second)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("jobs view (-want +got):\n%s", diff)
	}
}

// TestOutageOfTheEmulator cuts the connection to the emulator's Storage
// Write API while events flow, then restores it: nothing is lost, nothing
// is dead-lettered.
func TestOutageOfTheEmulator(t *testing.T) {
	em := newEmulated(t)
	p := startProxy(t, em.bq.GRPC)
	log := newLog(t)
	s := em.sink(t, log, bqtest.WriteClient(t, p.addr()))
	fd := startFeed(t, log, s.Handle)
	sim := simulate(t, simulation.Config{Seed: 5, Rate: 1, Projects: 10}, 10*time.Minute)
	half := len(sim.events) / 2
	fd.append(sim.events[:half])
	waitUntil(t, "rows to be written", func() bool { return counter(s.metrics.rows.WithLabelValues(outcomeWritten)) > 0 })
	p.setDown(true)
	fd.append(sim.events[half:])
	waitUntil(t, "appends to fail", func() bool { return counter(s.metrics.rows.WithLabelValues(outcomeFailed)) >= 20 })
	p.setDown(false)
	stats, diffs := em.waitConsistent(t, log, 3*time.Minute)
	if want := (CheckStats{Jobs: len(jobs(sim.events))}); stats != want || len(diffs) > 0 {
		t.Errorf("check = %+v, want %+v; first differences: %+v", stats, want, diffs[:min(len(diffs), 3)])
	}
	if dead := fd.deadLetters(time.Second); len(dead) > 0 {
		t.Errorf("%d events dead-lettered during an outage; want none: %v", len(dead), dead)
	}
}

// TestCheckAndReplay replays an hour of the log into an empty history,
// then deletes a job's rows and changes another's behind the sink's back:
// check finds both, and replay restores them.
func TestCheckAndReplay(t *testing.T) {
	em := newEmulated(t)
	sim := simulate(t, simulation.Config{Seed: 9, Rate: 0.2, Projects: 10}, time.Hour)
	log := newLog(t, sim.events...)
	s := em.sink(t, log, em.bq.Write)
	keys := jobs(sim.events)
	from, to := time.Unix(0, 0), time.Now().Add(24*time.Hour)

	start := time.Now()
	stats, err := s.Replay(t.Context(), ReplayOptions{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replay took %v", time.Since(start))
	if want := (ReplayStats{Events: int(countEvents(sim.events)), Jobs: len(keys), Written: len(keys)}); !cmp.Equal(want, stats) {
		t.Errorf("replay = %+v, want %+v", stats, want)
	}
	start = time.Now()
	if got, diffs := em.check(t, log); got.Missing+got.Different > 0 {
		t.Fatalf("check after the replay: %+v %+v", got, diffs)
	}
	t.Logf("check took %v", time.Since(start))

	gone, changed := keys[3], keys[7]
	em.query(t, fmt.Sprintf("DELETE FROM %s WHERE job_id = '%s'", em.b.Table(schema.JobVersionsTable), gone.JobID))
	em.query(t, fmt.Sprintf("UPDATE %s SET user_email = 'mallory@example.com' WHERE job_id = '%s'", em.b.Table(schema.JobVersionsTable), changed.JobID))
	got, diffs := em.check(t, log)
	want := []Difference{{Job: gone, Missing: true}, {Job: changed, Columns: []ColumnDiff{{Column: "user_email"}}}}
	slices.SortFunc(want, func(a, b Difference) int { return compareKeys(a.Job, b.Job) })
	opts := cmp.Options{cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Log" || p.Last().String() == ".BigQuery" }, cmp.Ignore())}
	if diff := cmp.Diff(want, diffs, opts); diff != "" || got.Missing != 1 || got.Different != 1 {
		t.Errorf("check after tampering: %+v (-want +got):\n%s", got, diff)
	}

	if _, err := s.Replay(t.Context(), ReplayOptions{From: from, To: to, Project: gone.Project}); err != nil {
		t.Fatal(err)
	}
	if gone.Project != changed.Project {
		if _, err := s.Replay(t.Context(), ReplayOptions{From: from, To: to, Project: changed.Project}); err != nil {
			t.Fatal(err)
		}
	}
	if got, diffs := em.check(t, log); got.Missing+got.Different > 0 {
		t.Errorf("check after replaying: %+v %+v", got, diffs)
	}
}
