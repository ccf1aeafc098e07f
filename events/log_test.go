package events_test

import (
	"cloud.google.com/go/bigtable"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/schema"
)

// backends are the Bigtables the contract runs on: bttest always, the
// emulator when BIGTABLE_EMULATOR_HOST is set.
var backends = []struct {
	name string
	open func(testing.TB, ...grpc.DialOption) *logtest.Bigtable
}{
	{"bttest", logtest.NewBttest},
	{"emulator", logtest.NewEmulator},
}

// contract is what every Bigtable must do for the log.
var contract = []struct {
	name string
	run  func(t *testing.T, open opener)
}{
	{"idempotent re-append", testIdempotent},
	{"concurrent overlapping appends", testConcurrentAppends},
	{"job read order", testJobOrder},
	{"read many jobs", testReadJobs},
	{"range boundaries", testRangeBounds},
	{"range merges shards", testRangeMerge},
	{"open jobs", testOpenJobs},
	{"stale open-jobs rows", testStaleOpenRows},
	{"job done", testJobDone},
	{"chunking", testChunking},
	{"large events", testLargeEvents},
	{"every field round trips", testRoundTrip},
	{"invalid events", testInvalid},
	{"backend failures", testFailures},
	{"reads that stall", testStalls},
	{"missing table", testMissingTable},
	{"ping", testPing},
}

type opener func(testing.TB, ...grpc.DialOption) *logtest.Bigtable

func TestLog(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range contract {
				t.Run(c.name, func(t *testing.T) { c.run(t, b.open) })
			}
		})
	}
}

// newLog opens a Log on a table of the test's own.
func newLog(t testing.TB, open opener, cfg events.LogConfig, dial ...grpc.DialOption) *events.Log {
	t.Helper()
	bt := open(t, dial...)
	cfg.Table = bt.Table
	l, err := events.NewLog(bt.Client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// base is a time recent enough that the garbage-collection rules keep
// every test event.
var base = time.Now().UTC().Truncate(time.Hour).Add(-24 * time.Hour)

func at(d time.Duration) time.Time { return base.Add(d) }

func job(i int) events.JobKey {
	return events.JobKey{Project: fmt.Sprintf("proj-%d", i%7), Location: []string{"US", "EU", "asia-northeast1"}[i%3], JobID: fmt.Sprintf("job_%05d", i)}
}

// life is a job's events: inserted, progress, and (if done) completed, at
// sub-millisecond times so that ordering is tested below Bigtable's
// timestamp granularity.
func life(i int, start time.Duration, done bool) []events.Event {
	k := job(i)
	t0 := at(start + time.Duration(i)*time.Microsecond*7)
	evs := []events.Event{
		{ID: events.AuditEventID("log", k.JobID+"/insert", 0), Kind: events.KindInserted, Job: k, Time: t0, State: events.StateRunning,
			Facts:  events.Facts{Principal: "ann@example.com", JobType: events.JobTypeQuery, Query: "SELECT " + k.JobID, CreateTime: t0},
			Source: events.Source{Format: "v2", Method: "InsertJob:jobInsertion", LogName: "log", InsertID: k.JobID + "/insert"}},
		{ID: events.DerivedEventID(k.String(), "progress"), Kind: events.KindProgress, Job: k, Time: t0.Add(1500 * time.Nanosecond), State: events.StateRunning,
			Facts: events.Facts{SlotMs: events.Int64(int64(i)), Progress: events.Progress{CompletedUnits: events.Int64(1)}}},
	}
	if done {
		evs = append(evs, events.Event{ID: events.AuditEventID("log", k.JobID+"/done", 0), Kind: events.KindCompleted, Job: k,
			Time: t0.Add(2 * time.Second), State: events.StateDone, Facts: events.Facts{EndTime: t0.Add(2 * time.Second), BytesBilled: events.Int64(0)}})
	}
	return evs
}

// corpus is n jobs, every third still running.
func corpus(n int) []events.Event {
	var evs []events.Event
	for i := range n {
		evs = append(evs, life(i, time.Duration(i%5)*time.Millisecond, i%3 != 0)...)
	}
	return evs
}

func keysOf(evs []events.Event) []events.JobKey {
	var keys []events.JobKey
	for _, e := range evs {
		if !slices.Contains(keys, e.Job) {
			keys = append(keys, e.Job)
		}
	}
	return keys
}

// view is everything the log's reads return, for comparing whole logs.
type view struct {
	Range []events.Event
	Jobs  map[events.JobKey][]events.Event
	Open  []events.JobKey
}

var (
	farPast   = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	farFuture = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
)

func read(t *testing.T, l *events.Log, keys []events.JobKey) view {
	t.Helper()
	v := view{Jobs: map[events.JobKey][]events.Event{}}
	if err := l.Range(t.Context(), farPast, farFuture, func(e events.Event) error { v.Range = append(v.Range, e); return nil }); err != nil {
		t.Fatalf("Range: %v", err)
	}
	for _, k := range keys {
		evs, err := l.JobEvents(t.Context(), k)
		if err != nil {
			t.Fatalf("JobEvents(%s): %v", k, err)
		}
		if len(evs) > 0 {
			v.Jobs[k] = evs
		}
	}
	v.Open = openJobs(t, l)
	return v
}

func openJobs(t *testing.T, l *events.Log) []events.JobKey {
	t.Helper()
	var keys []events.JobKey
	if err := l.OpenJobs(t.Context(), func(k events.JobKey) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatalf("OpenJobs: %v", err)
	}
	sortKeys(keys)
	return keys
}

func sortKeys(keys []events.JobKey) {
	slices.SortFunc(keys, func(a, b events.JobKey) int { return strings.Compare(a.String(), b.String()) })
}

// want is the view of a log holding evs (and only those): events unique by
// (ID, Time) sorted by (Time, ID), the open jobs those without a DONE event.
func want(evs []events.Event) view {
	v := view{Jobs: map[events.JobKey][]events.Event{}}
	seen := map[string]bool{}
	done := map[events.JobKey]bool{}
	for _, e := range evs {
		id := e.ID + "@" + e.Time.String()
		if !seen[id] {
			seen[id] = true
			v.Range = append(v.Range, e)
			v.Jobs[e.Job] = append(v.Jobs[e.Job], e)
		}
		done[e.Job] = done[e.Job] || e.State == events.StateDone
	}
	byTimeID := func(a, b events.Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	}
	slices.SortFunc(v.Range, byTimeID)
	for k := range v.Jobs {
		slices.SortFunc(v.Jobs[k], byTimeID)
		if !done[k] {
			v.Open = append(v.Open, k)
		}
	}
	sortKeys(v.Open)
	return v
}

func appendAll(t *testing.T, l *events.Log, evs []events.Event) {
	t.Helper()
	if err := l.Append(t.Context(), evs); err != nil {
		t.Fatalf("Append(%d events): %v", len(evs), err)
	}
}

func check(t *testing.T, got, want view) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log contents mismatch (-want +got):\n%s", diff)
	}
}

// redeliver returns evs shuffled, each one to three times.
func redeliver(r *rand.Rand, evs []events.Event) []events.Event {
	var out []events.Event
	for _, e := range evs {
		for range 1 + r.IntN(3) {
			out = append(out, e)
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// split cuts evs into batches of random sizes.
func split(r *rand.Rand, evs []events.Event) [][]events.Event {
	var out [][]events.Event
	for len(evs) > 0 {
		n := min(len(evs), 1+r.IntN(40))
		out = append(out, evs[:n])
		evs = evs[n:]
	}
	return out
}

func testIdempotent(t *testing.T, open opener) {
	evs := corpus(60)
	keys := keysOf(evs)
	once := newLog(t, open, events.LogConfig{})
	appendAll(t, once, evs)
	first := read(t, once, keys)
	check(t, first, want(evs))

	r := rand.New(rand.NewPCG(1, 2))
	again := newLog(t, open, events.LogConfig{})
	for round := range 2 {
		for _, batch := range split(r, redeliver(r, evs)) {
			appendAll(t, again, batch)
		}
		// A RUNNING event delivered after its job's DONE one puts the job
		// back in the index: a superset, until folded and pruned.
		got := read(t, again, keys)
		checkSuperset(t, got.Open, first.Open)
		got.Open = settle(t, again)
		if diff := cmp.Diff(first, got); diff != "" {
			t.Errorf("after redelivery round %d, log differs from a single append (-once +redelivered):\n%s", round, diff)
		}
	}
	appendAll(t, once, evs)
	if diff := cmp.Diff(first, read(t, once, keys)); diff != "" {
		t.Errorf("appending the same batch again changed the log (-first +again):\n%s", diff)
	}
}

// checkSuperset reports running jobs missing from the open-jobs index.
func checkSuperset(t *testing.T, open, running []events.JobKey) {
	t.Helper()
	for _, k := range running {
		if !slices.Contains(open, k) {
			t.Errorf("running job %s is missing from OpenJobs %v", k, open)
		}
	}
}

// settle does what a reader of the index does: folds the listed jobs,
// prunes the DONE ones, and returns the open jobs left.
func settle(t *testing.T, l *events.Log) []events.JobKey {
	t.Helper()
	var done []events.JobKey
	err := l.ReadJobs(t.Context(), openJobs(t, l), func(k events.JobKey, evs []events.Event) error {
		if j := events.Fold(k, evs); j.Done() {
			done = append(done, k)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ReadJobs: %v", err)
	}
	if err := l.PruneOpen(t.Context(), done); err != nil {
		t.Fatalf("PruneOpen: %v", err)
	}
	return openJobs(t, l)
}

func testConcurrentAppends(t *testing.T, open opener) {
	evs := corpus(45)
	l := newLog(t, open, events.LogConfig{MaxBatchRows: 17})
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for w := range errs {
		r := rand.New(rand.NewPCG(uint64(w), 9))
		batches := split(r, redeliver(r, evs))
		wg.Go(func() {
			for _, b := range batches {
				if err := l.Append(t.Context(), b); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got, w := read(t, l, keysOf(evs)), want(evs)
	checkSuperset(t, got.Open, w.Open)
	got.Open = settle(t, l)
	check(t, got, w)
}

func testJobOrder(t *testing.T, open opener) {
	k := job(1)
	ev := func(id string, d time.Duration, state events.State) events.Event {
		return events.Event{ID: id, Kind: events.KindStateChanged, Job: k, Time: at(d), State: state}
	}
	// Listed in the order the log must return them: by time to the
	// nanosecond, then by id.
	ordered := []events.Event{
		ev("zz", 0, events.StatePending),
		ev("aa", time.Nanosecond, events.StateRunning),
		ev("bb", time.Nanosecond, events.StateRunning),
		ev("0a", 999*time.Nanosecond, events.StateRunning),
		ev("00", time.Millisecond, events.StateRunning),
		ev("ff", time.Second, events.StateDone),
		ev("01", time.Hour, events.StateRunning),
	}
	l := newLog(t, open, events.LogConfig{})
	shuffled := slices.Clone(ordered)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	appendAll(t, l, shuffled[:3])
	appendAll(t, l, shuffled[3:])
	got, err := l.JobEvents(t.Context(), k)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ordered, got); diff != "" {
		t.Errorf("JobEvents order mismatch (-want +got):\n%s", diff)
	}
	got, err = l.JobEvents(t.Context(), job(2))
	if err != nil || len(got) != 0 {
		t.Errorf("JobEvents of a job without events = %v, %v; want none, no error", got, err)
	}
}

func testReadJobs(t *testing.T, open opener) {
	evs := corpus(250)
	l := newLog(t, open, events.LogConfig{MaxBatchRows: 40})
	appendAll(t, l, evs)
	keys := append(keysOf(evs), job(1), job(2), job(100000), job(100001)) // repeats and jobs without events
	rand.New(rand.NewPCG(5, 6)).Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	got := map[events.JobKey][]events.Event{}
	err := l.ReadJobs(t.Context(), keys, func(k events.JobKey, evs []events.Event) error {
		if _, dup := got[k]; dup {
			t.Errorf("ReadJobs called fn twice for %s", k)
		}
		got[k] = slices.Clone(evs) // evs is fn's only until it returns
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want(evs).Jobs, got); diff != "" {
		t.Errorf("ReadJobs mismatch (-want +got):\n%s", diff)
	}

	stop := errors.New("enough")
	calls := 0
	err = l.ReadJobs(t.Context(), keys, func(events.JobKey, []events.Event) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("ReadJobs with a failing fn = %v after %d calls; want %v after 1", err, calls, stop)
	}
	err = l.ReadJobs(t.Context(), []events.JobKey{{Project: "p#", Location: "US", JobID: "j"}}, nil)
	if !errors.Is(err, events.ErrInvalid) {
		t.Errorf("ReadJobs of an invalid key = %v; want ErrInvalid", err)
	}
}

func rangeOf(t *testing.T, l *events.Log, from, to time.Time) []events.Event {
	t.Helper()
	var got []events.Event
	if err := l.Range(t.Context(), from, to, func(e events.Event) error { got = append(got, e); return nil }); err != nil {
		t.Fatalf("Range(%s, %s): %v", from, to, err)
	}
	return got
}

func testRangeBounds(t *testing.T, open opener) {
	from, to := at(time.Minute), at(2*time.Minute)
	k := job(1)
	var evs []events.Event
	for i, ts := range []time.Time{from.Add(-time.Nanosecond), from, from.Add(time.Nanosecond), to.Add(-time.Nanosecond), to, to.Add(time.Millisecond)} {
		evs = append(evs, events.Event{ID: fmt.Sprintf("ev-%d", i), Kind: events.KindProgress, Job: k, Time: ts})
	}
	l := newLog(t, open, events.LogConfig{})
	appendAll(t, l, evs)
	tests := []struct {
		name     string
		from, to time.Time
		want     []events.Event
	}{
		{"half open", from, to, evs[1:4]},
		{"one nanosecond", from, from.Add(time.Nanosecond), evs[1:2]},
		{"empty", from, from, nil},
		{"reversed", to, from, nil},
		{"everything", farPast, farFuture, evs},
		{"before everything", farPast, from.Add(-time.Nanosecond), nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, rangeOf(t, l, tt.from, tt.to)); diff != "" {
			t.Errorf("Range %s mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
}

func testRangeMerge(t *testing.T, open opener) {
	r := rand.New(rand.NewPCG(7, 8))
	var evs []events.Event
	for i := range 600 {
		// Many events share a time, a millisecond or a microsecond.
		d := time.Duration(r.IntN(50))*time.Millisecond + time.Duration(r.IntN(3))*time.Microsecond
		evs = append(evs, events.Event{ID: events.DerivedEventID("merge", fmt.Sprint(i)), Kind: events.KindProgress, Job: job(i % 40), Time: at(d)})
	}
	l := newLog(t, open, events.LogConfig{})
	appendAll(t, l, evs)
	if diff := cmp.Diff(want(evs).Range, rangeOf(t, l, at(0), at(time.Second))); diff != "" {
		t.Errorf("Range mismatch (-want +got):\n%s", diff)
	}
	stop := errors.New("enough")
	calls := 0
	err := l.Range(t.Context(), farPast, farFuture, func(events.Event) error {
		calls++
		if calls == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 10 {
		t.Errorf("Range with a failing fn = %v after %d calls; want %v after 10", err, calls, stop)
	}
}

func testOpenJobs(t *testing.T, open opener) {
	running := life(1, 0, false)
	done := life(2, 0, true)
	sameBatch := life(3, 0, true)
	lateInsert := life(4, 0, true)
	noState := events.Event{ID: "cancel", Kind: events.KindCancelRequested, Job: job(5), Time: at(0)}
	onlyDone := life(6, 0, true)[2:]
	l := newLog(t, open, events.LogConfig{})
	appendAll(t, l, slices.Concat(running, done[:2], []events.Event{noState}))
	appendAll(t, l, slices.Concat(done[2:], sameBatch))
	appendAll(t, l, slices.Concat(lateInsert[2:], onlyDone))
	appendAll(t, l, lateInsert[:1]) // arrives after the job's DONE event

	want := []events.JobKey{job(1), job(4), job(5)}
	sortKeys(want)
	if diff := cmp.Diff(want, openJobs(t, l)); diff != "" {
		t.Errorf("OpenJobs mismatch (-want +got):\n%s", diff)
	}
	// The caller folds job 4, finds it DONE and prunes it; pruning a job
	// without an entry is harmless.
	if err := l.PruneOpen(t.Context(), []events.JobKey{job(4), job(6), job(4)}); err != nil {
		t.Fatal(err)
	}
	want = []events.JobKey{job(1), job(5)}
	sortKeys(want)
	if diff := cmp.Diff(want, openJobs(t, l)); diff != "" {
		t.Errorf("OpenJobs after PruneOpen mismatch (-want +got):\n%s", diff)
	}
	if err := l.PruneOpen(t.Context(), []events.JobKey{{}}); !errors.Is(err, events.ErrInvalid) {
		t.Errorf("PruneOpen of an invalid key = %v; want ErrInvalid", err)
	}
}

// testJobDone: whether a job has a DONE event, however many other events
// it has and whatever their text says.
func testJobDone(t *testing.T, open opener) {
	running := life(1, 0, false)
	running[0].Facts.Query = `SELECT '"state":"DONE"' AS state`
	lateInsert := life(2, 0, true)
	l := newLog(t, open, events.LogConfig{})
	appendAll(t, l, slices.Concat(running, life(3, 0, true), lateInsert[2:]))
	appendAll(t, l, lateInsert[:2]) // after the job's DONE event
	for _, tc := range []struct {
		key  events.JobKey
		want bool
	}{{job(1), false}, {job(2), true}, {job(3), true}, {job(4), false}} {
		done, err := l.JobDone(t.Context(), tc.key)
		if err != nil || done != tc.want {
			t.Errorf("JobDone(%s) = %v, %v; want %v", tc.key, done, err, tc.want)
		}
	}
	if _, err := l.JobDone(t.Context(), events.JobKey{}); !errors.Is(err, events.ErrInvalid) {
		t.Errorf("JobDone of an invalid key = %v; want ErrInvalid", err)
	}
}

func testChunking(t *testing.T, open opener) {
	evs := corpus(100)
	l := newLog(t, open, events.LogConfig{MaxBatchRows: 7})
	appendAll(t, l, evs)
	check(t, read(t, l, keysOf(evs)), want(evs))
}

// testLargeEvents appends events with 100 KB queries, more in one append
// than fits one 4 MiB request.
func testLargeEvents(t *testing.T, open opener) {
	var evs []events.Event
	for i := range 60 {
		e := life(i, 0, false)[0]
		e.Query = strings.Repeat(fmt.Sprintf("SELECT %d, 'é\"\\x' -- ", i), 100<<10/20)[:100<<10]
		e.QueryTruncated = i%2 == 0
		evs = append(evs, e)
	}
	l := newLog(t, open, events.LogConfig{})
	appendAll(t, l, evs)
	check(t, read(t, l, keysOf(evs)), want(evs))
}

func testRoundTrip(t *testing.T, open opener) {
	full := events.Event{
		ID: "full", Kind: events.KindCompleted, Job: job(1), Time: at(123456789 * time.Nanosecond), State: events.StateDone,
		Error: &events.JobError{Code: "invalidQuery", Message: "Syntax error: \"x\" at [1:1]"},
		Facts: events.Facts{
			Principal: "sa@p.iam.gserviceaccount.com", JobType: events.JobTypeQuery, StatementType: "SELECT", Priority: "BATCH",
			Query: "SELECT 1 /* ünïcode ✓ */", QueryTruncated: true, Labels: map[string]string{"team": "a", "": "empty"},
			Reservation: "projects/p/locations/US/reservations/r", ReferencedTables: []string{"p.d.t1", "p.d.t2"},
			DestinationTable: "p.d._anon", SourceTables: []string{"p.d.s"}, SourceURIs: []string{"gs://b/a*"},
			DestinationURIs: []string{"gs://b/out"}, ParentJobID: "script_job_1",
			CreateTime: at(time.Nanosecond), StartTime: at(time.Microsecond), EndTime: at(time.Second),
			BytesProcessed: events.Int64(0), BytesBilled: events.Int64(10 << 20), SlotMs: events.Int64(-1), BillingTier: events.Int64(1),
			CacheHit: events.Bool(false), OutputRows: events.Int64(1 << 62),
			Progress: events.Progress{ActiveUnits: events.Int64(1), CompletedUnits: events.Int64(2), PendingUnits: events.Int64(3)},
		},
		Source: events.Source{Format: "v1", Method: "jobservice.jobcompleted", LogName: "projects/p/logs/x", InsertID: "abc"},
	}
	empty := events.Event{ID: "empty", Kind: events.KindProgress, Job: job(1), Time: at(time.Hour),
		Error: &events.JobError{}, Facts: events.Facts{Labels: map[string]string{}, ReferencedTables: []string{}}}
	zone := events.Event{ID: "zone", Kind: events.KindProgress, Job: job(1), Time: at(2 * time.Hour).In(time.FixedZone("x", 3600))}
	l := newLog(t, open, events.LogConfig{})
	appendAll(t, l, []events.Event{zone, empty, full})
	got, err := l.JobEvents(t.Context(), job(1))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]events.Event{full, empty, zone}, got); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
}

func testInvalid(t *testing.T, open opener) {
	valid := life(1, 0, false)
	bad := []events.Event{
		{Kind: events.KindInserted, Job: job(2), Time: at(0)},
		{ID: "old", Kind: events.KindInserted, Job: job(2), Time: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ID: "far", Kind: events.KindInserted, Job: job(2), Time: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ID: "hash", Kind: events.KindInserted, Job: events.JobKey{Project: "p", Location: "US#", JobID: "j"}, Time: at(0)},
		{ID: strings.Repeat("x", 2000), Kind: events.KindInserted, Job: job(2), Time: at(0)},
		{ID: "long key", Kind: events.KindInserted, Job: events.JobKey{Project: "p", Location: "US", JobID: strings.Repeat("j", 5000)}, Time: at(0)},
		{ID: "bad fact time", Kind: events.KindInserted, Job: job(2), Time: at(0), Facts: events.Facts{EndTime: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	l := newLog(t, open, events.LogConfig{})
	for _, b := range bad {
		err := l.Append(t.Context(), append(slices.Clone(valid), b))
		if !errors.Is(err, events.ErrInvalid) || errors.Is(err, events.ErrUnavailable) {
			t.Errorf("Append with invalid event %.20q = %v; want only ErrInvalid", b.ID, err)
		}
	}
	check(t, read(t, l, []events.JobKey{job(1), job(2)}), view{Jobs: map[events.JobKey][]events.Event{}})
}

func testMissingTable(t *testing.T, open opener) {
	bt := open(t)
	l, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table + "-missing"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(t.Context(), life(1, 0, false)); !errors.Is(err, events.ErrUnavailable) {
		t.Errorf("Append to a missing table = %v; want ErrUnavailable", err)
	}
}

// TestDefaultTable keeps the log's default table the schema's.
func TestDefaultTable(t *testing.T) {
	if events.DefaultLogTable != schema.BigtableTable {
		t.Errorf("events.DefaultLogTable = %q, schema.BigtableTable = %q; want them equal", events.DefaultLogTable, schema.BigtableTable)
	}
}

func TestLogConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  events.LogConfig
		want []string // parts of the error, none for valid
	}{
		{"defaults", events.LogConfig{}, nil},
		{"explicit", events.LogConfig{Table: "my_table.v2-x", MaxBatchRows: 100000}, nil},
		{"bad table", events.LogConfig{Table: "no/slash"}, []string{"table"}},
		{"long table", events.LogConfig{Table: strings.Repeat("t", 51)}, []string{"table"}},
		{"negative rows", events.LogConfig{MaxBatchRows: -1}, []string{"max batch rows"}},
		{"everything wrong", events.LogConfig{Table: "-", MaxBatchRows: 100001}, []string{"table", "max batch rows"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != (len(tt.want) > 0) {
				t.Fatalf("Validate() = %v; want error: %v", err, len(tt.want) > 0)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v; want it to mention %q", err, w)
				}
			}
		})
	}
	if _, err := events.NewLog(nil, events.LogConfig{}); err == nil {
		t.Error("NewLog(nil client) succeeded; want an error")
	}
}

// TestRangeCancel checks that Range stops its scans when the caller's
// context ends.
func TestRangeCancel(t *testing.T) {
	bt := logtest.NewBttest(t)
	l, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table})
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, l, corpus(30))
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	err = l.Range(ctx, farPast, farFuture, func(events.Event) error {
		calls++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Range after cancel = %v after %d calls; want context.Canceled", err, calls)
	}
}

// testStaleOpenRows: an open-jobs index row whose key the log no longer
// accepts (a '/' in the location, written before the rule) does not stop
// OpenJobs: it is reported, skipped and removed, and the jobs around it are
// listed.
func testStaleOpenRows(t *testing.T, open opener) {
	bt := open(t)
	var stale []string
	l, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table,
		OnStaleOpenRow: func(rowKey string, err error) { stale = append(stale, rowKey) }})
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, l, slices.Concat(life(1, 0, false), life(2, 0, false)))
	// A row of the index's shape whose key the log refuses, and one of
	// another shape (a later version's), which is skipped and left.
	const bad, other = "o#00#acme#b/c#d", "o#00#acme#US#job#v2"
	for _, key := range []string{bad, other} {
		m := bigtable.NewMutation()
		m.Set("o", "o", bigtable.Now(), nil)
		if err := bt.Client.Open(bt.Table).Apply(t.Context(), key, m); err != nil {
			t.Fatal(err)
		}
	}
	want := []events.JobKey{job(1), job(2)}
	sortKeys(want)
	if diff := cmp.Diff(want, openJobs(t, l)); diff != "" {
		t.Errorf("OpenJobs with a stale row mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{bad}, stale); diff != "" {
		t.Errorf("stale rows reported (-want +got):\n%s", diff)
	}
	stale = nil
	if diff := cmp.Diff(want, openJobs(t, l)); diff != "" || len(stale) != 0 {
		t.Errorf("the second OpenJobs: (-want +got):\n%s\nstale rows reported again: %q", diff, stale)
	}
	if r, err := bt.Client.Open(bt.Table).ReadRow(t.Context(), other); err != nil || r == nil {
		t.Errorf("the row of another shape was removed (%v)", err)
	}
}
