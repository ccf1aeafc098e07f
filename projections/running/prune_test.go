package running

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/simulation"
	"github.com/bqobserver/bqobserver/internal/testutil/fakeclock"
)

// listedKeys returns the keys of the listed jobs, in openKeys' order.
func listedKeys(p *Projection) []events.JobKey {
	keys := p.store.keys()
	slices.SortFunc(keys, func(a, b events.JobKey) int { return compareIDs(&a, &b) })
	return keys
}

// messyDelivery is a delivery with many more late, reordered and duplicated
// entries than the default, so that many jobs get events after their DONE.
func messyDelivery() *simulation.Delivery {
	d := simulation.DefaultDelivery()
	d.DuplicateShare, d.ReorderShare, d.DelayShare = 0.1, 0.3, 0.2
	return &d
}

// TestFinishedJobsLeaveTheIndex runs a simulated organization's entries
// through the log and the projection in delivery order, as ingest and the
// live feed do (each event appended, then applied), and checks that the
// log's open-jobs index then holds exactly the listed jobs: every job that
// a late event re-opened after its DONE was pruned again, both while the
// projection remembered it as finished and, with a short memory, after it
// had to read the job's history from the log.
func TestFinishedJobsLeaveTheIndex(t *testing.T) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{
		{name: "finished jobs remembered", ttl: time.Hour},
		{name: "memory shorter than the delays", ttl: 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			org, err := simulation.New(simulation.Config{Seed: 11, Rate: 4, Projects: 10, Start: t0, Delivery: messyDelivery()})
			if err != nil {
				t.Fatal(err)
			}
			l := newLog(t)
			p, clk := newProjection(t, l, t0, Config{TombstoneTTL: tc.ttl})
			done := map[events.JobKey]bool{}
			reopened := map[events.JobKey]bool{}
			for e := range org.Generate(8 * time.Minute) {
				clk.Advance(e.Published.Sub(clk.Now()))
				for _, ev := range e.Meant {
					if done[ev.Job] && ev.State != events.StateDone {
						reopened[ev.Job] = true
					}
					done[ev.Job] = done[ev.Job] || ev.State == events.StateDone
				}
				if err := l.Append(t.Context(), e.Meant); err != nil {
					t.Fatal(err)
				}
				if err := p.Apply(t.Context(), e.Meant...); err != nil {
					t.Fatal(err)
				}
				p.pruner.flush(t.Context())
			}
			if len(reopened) < 10 {
				t.Fatalf("only %d jobs got an event after their DONE one; the test needs more", len(reopened))
			}
			if diff := cmp.Diff(listedKeys(p), openKeys(t, l)); diff != "" {
				t.Errorf("open-jobs index against the listed jobs, after %d jobs were re-opened by late events (-listed +index):\n%s", len(reopened), diff)
			}
		})
	}
}

// TestLateEventAfterRestart checks a job that finished before the
// projection started: a late event of it, from before the start, neither
// lists it nor leaves it in the index.
func TestLateEventAfterRestart(t *testing.T) {
	l := newLog(t)
	s := jobStory("acme-etl", "EU", "finished_before_restart")
	ins, done := s.inserted(t0, events.StateRunning, events.Facts{}), s.completed(t0.Add(time.Minute))
	if err := l.Append(t.Context(), []events.Event{done}); err != nil {
		t.Fatal(err)
	}
	p, _ := newProjection(t, l, t0.Add(2*time.Minute), Config{})
	// The insert arrives late: appended (which re-opens the job in the
	// index), then delivered.
	if err := l.Append(t.Context(), []events.Event{ins}); err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(t.Context(), ins); err != nil {
		t.Fatal(err)
	}
	p.pruner.flush(t.Context())
	if got := listedKeys(p); len(got) != 0 {
		t.Errorf("listed %v after a late insert of a finished job, want none", got)
	}
	if got := openKeys(t, l); len(got) != 0 {
		t.Errorf("open-jobs index holds %v after a late insert of a finished job, want none", got)
	}
}

// TestLateCancelOfAFinishedJob checks a request to cancel a job that
// finished before the projection started, or longer ago than it remembers
// finished jobs: the event is dated now, but says nothing of whether the
// job runs, so the job's history decides; it is neither listed nor left in
// the index.
func TestLateCancelOfAFinishedJob(t *testing.T) {
	for _, tc := range []struct {
		name    string
		started time.Time // the projection's start
	}{
		{"finished before the start", t0.Add(2 * time.Minute)},
		{"finished before the memory", t0.Add(-time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLog(t)
			s := jobStory("acme-etl", "EU", "finished_long_ago")
			ins, done := s.inserted(t0, events.StateRunning, events.Facts{}), s.completed(t0.Add(time.Minute))
			if err := l.Append(t.Context(), []events.Event{ins, done}); err != nil {
				t.Fatal(err)
			}
			p, clk := newProjection(t, l, tc.started, Config{TombstoneTTL: 30 * time.Minute})
			if tc.started.Before(t0) { // the feed delivered the job's events
				clk.Advance(t0.Add(time.Minute).Sub(clk.Now()))
				if err := p.Apply(t.Context(), ins, done); err != nil {
					t.Fatal(err)
				}
			}
			clk.Advance(t0.Add(3 * time.Hour).Sub(clk.Now()))
			cancel := s.event(events.KindCancelRequested, clk.Now(), events.StateUnknown, events.Facts{})
			if err := l.Append(t.Context(), []events.Event{cancel}); err != nil {
				t.Fatal(err)
			}
			if err := p.Apply(t.Context(), cancel); err != nil {
				t.Fatal(err)
			}
			p.pruner.flush(t.Context())
			if got := listedKeys(p); len(got) != 0 {
				t.Errorf("listed %v after a request to cancel a finished job, want none", got)
			}
			if got := openKeys(t, l); len(got) != 0 {
				t.Errorf("open-jobs index holds %v after a request to cancel a finished job, want none", got)
			}
		})
	}
}

// failingPrunes is an event log whose PruneOpen fails a number of times
// before it records what it is asked to prune.
type failingPrunes struct {
	eventLog
	failures int
	pruned   []events.JobKey
}

func (f *failingPrunes) PruneOpen(_ context.Context, keys []events.JobKey) error {
	if f.failures > 0 {
		f.failures--
		return fmt.Errorf("pruning: %w", events.ErrUnavailable)
	}
	f.pruned = append(f.pruned, keys...)
	return nil
}

// TestPrunerRetries checks that jobs whose pruning failed are pruned by a
// later flush, once.
func TestPrunerRetries(t *testing.T) {
	l := &failingPrunes{failures: 2}
	p := newPruner(l, slog.New(slog.DiscardHandler), testMetrics(t))
	a, b := events.JobKey{Project: "p", Location: "US", JobID: "a"}, events.JobKey{Project: "p", Location: "US", JobID: "b"}
	p.add(a)
	p.flush(t.Context())
	p.add(b)
	p.add(a)
	p.flush(t.Context())
	if len(l.pruned) != 0 {
		t.Fatalf("pruned %v while the log failed", l.pruned)
	}
	p.flush(t.Context())
	p.flush(t.Context())
	slices.SortFunc(l.pruned, func(x, y events.JobKey) int { return compareIDs(&x, &y) })
	if diff := cmp.Diff([]events.JobKey{a, b}, l.pruned); diff != "" {
		t.Errorf("pruned (-want +got):\n%s", diff)
	}
}

// TestFeedOrderUnlikeAppendOrder checks a job whose late event was appended
// after its DONE event, re-opening it in the index, but delivered by the
// feed before the DONE event, as Pub/Sub may: the DONE event that closes
// the listed job prunes it.
func TestFeedOrderUnlikeAppendOrder(t *testing.T) {
	l := newLog(t)
	p, clk := newProjection(t, l, t0, Config{})
	s := jobStory("acme-etl", "EU", "delivered_out_of_order")
	ins, done := s.inserted(t0.Add(time.Minute), events.StateRunning, events.Facts{}), s.completed(t0.Add(2*time.Minute))
	clk.Advance(3 * time.Minute)
	for _, e := range []events.Event{done, ins} {
		if err := l.Append(t.Context(), []events.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Apply(t.Context(), ins, done); err != nil {
		t.Fatal(err)
	}
	p.pruner.flush(t.Context())
	if got := listedKeys(p); len(got) != 0 {
		t.Errorf("listed %v after its DONE event, want none", got)
	}
	if got := openKeys(t, l); len(got) != 0 {
		t.Errorf("open-jobs index holds %v after the feed applied the job's DONE event, want none", got)
	}
}

// hangingPrunes is an event log whose PruneOpen never answers until its
// caller gives up, as an unreachable Bigtable; it says how many calls it
// had and records what a call that answers prunes once answer is set. Its
// other calls go to the log it wraps.
type hangingPrunes struct {
	eventLog
	mu     sync.Mutex
	answer bool
	calls  int
	pruned []events.JobKey
}

func (h *hangingPrunes) PruneOpen(ctx context.Context, keys []events.JobKey) error {
	h.mu.Lock()
	h.calls++
	if h.answer {
		h.pruned = append(h.pruned, keys...)
		h.mu.Unlock()
		return nil
	}
	h.mu.Unlock()
	<-ctx.Done()
	return fmt.Errorf("pruning: %w: %w", events.ErrUnavailable, ctx.Err())
}

// TestPrunerBounded checks that a flush gives up on a log that does not
// answer within its timeout, keeping its jobs for a later flush, and that
// a flush prunes at most pruneBatch jobs.
func TestPrunerBounded(t *testing.T) {
	l := &hangingPrunes{}
	p := newPruner(l, slog.New(slog.DiscardHandler), testMetrics(t))
	p.timeout = 100 * time.Millisecond
	const n = pruneBatch*2 + 5
	for i := range n {
		p.add(events.JobKey{Project: "p", Location: "US", JobID: fmt.Sprintf("j%d", i)})
	}
	start := time.Now()
	p.flush(t.Context())
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a flush on a log that does not answer took %s, want about its timeout of %s", took, p.timeout)
	}
	l.mu.Lock()
	l.answer = true
	l.mu.Unlock()
	var sizes []int
	for range 4 {
		before := len(l.pruned)
		p.flush(t.Context())
		sizes = append(sizes, len(l.pruned)-before)
	}
	if diff := cmp.Diff([]int{pruneBatch, pruneBatch, 5, 0}, sizes); diff != "" {
		t.Errorf("jobs pruned by each flush once the log answers (-want +got):\n%s", diff)
	}
	seen := map[events.JobKey]bool{}
	for _, k := range l.pruned {
		seen[k] = true
	}
	if len(seen) != n || len(l.pruned) != n {
		t.Errorf("pruned %d jobs, %d of them distinct; want each of the %d once", len(l.pruned), len(seen), n)
	}
}

// TestSweepWhilePruningHangs runs the projection while the log's PruneOpen
// hangs: the sweep still flags a quiet job stale, on time.
func TestSweepWhilePruningHangs(t *testing.T) {
	l := &hangingPrunes{eventLog: newLog(t)}
	c := fakeclock.New(t0.Add(time.Minute))
	p, err := New(Config{Now: c.Now, StaleAfter: time.Hour, SweepInterval: 10 * time.Millisecond, PruneInterval: 10 * time.Millisecond}, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	p.MarkLive()
	s := jobStory("p", "US", "quiet")
	mustApply(t, p, s.inserted(t0, events.StateRunning, events.Facts{}))
	p.pruner.add(events.JobKey{Project: "p", Location: "US", JobID: "finished"})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitUntil(t, 5*time.Second, "a prune to hang", func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.calls > 0 })
	c.Advance(2 * time.Hour)
	waitUntil(t, 5*time.Second, "the quiet job to be flagged stale", func() bool { v, ok := p.store.get(s.key); return ok && v.stale })
}

// testMetrics returns a projection's metrics, registered nowhere.
func testMetrics(t *testing.T) *metrics {
	t.Helper()
	m, err := newMetrics(nil, func() int { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// outageLog is an event log whose index fails while it is down: PruneOpen
// while prunes is set, OpenJobs while lists is; events are appended and
// read as ever.
type outageLog struct {
	eventLog
	mu            sync.Mutex
	prunes, lists bool
}

func (o *outageLog) set(prunes, lists bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.prunes, o.lists = prunes, lists
}

func (o *outageLog) failing(down *bool, what string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if *down {
		return fmt.Errorf("%s: %w", what, events.ErrUnavailable)
	}
	return nil
}

func (o *outageLog) PruneOpen(ctx context.Context, keys []events.JobKey) error {
	if err := o.failing(&o.prunes, "pruning"); err != nil {
		return err
	}
	return o.eventLog.PruneOpen(ctx, keys)
}

func (o *outageLog) OpenJobs(ctx context.Context, fn func(events.JobKey) error) error {
	if err := o.failing(&o.lists, "listing open jobs"); err != nil {
		return err
	}
	return o.eventLog.OpenJobs(ctx, fn)
}

// TestOverflowedQueueSwept runs a simulated organization's messy entries
// through the log and the projection, as in TestFinishedJobsLeaveTheIndex,
// while the log's index cannot be pruned for the first half: the prune
// queue, bounded to a few jobs, overflows, and the jobs left out are
// counted. Once the index can be pruned again, a sweep of it is tried while
// it still cannot be listed, then again, filling the small queue, until
// one is done: the index ends holding
// exactly the listed jobs, and a running job whose events the feed has not
// delivered yet stays in it.
func TestOverflowedQueueSwept(t *testing.T) {
	org, err := simulation.New(simulation.Config{Seed: 11, Rate: 4, Projects: 10, Start: t0, Delivery: messyDelivery()})
	if err != nil {
		t.Fatal(err)
	}
	l := newLog(t)
	o := &outageLog{eventLog: l}
	p, clk := newProjection(t, o, t0, Config{})
	p.pruner.max = 8
	const minutes = 8
	o.set(true, true)
	for e := range org.Generate(minutes * time.Minute) {
		switch since := e.Published.Sub(t0); {
		case since > minutes*time.Minute*3/4:
			o.set(false, false)
		case since > minutes*time.Minute/2:
			o.set(false, true)
		}
		clk.Advance(e.Published.Sub(clk.Now()))
		if err := l.Append(t.Context(), e.Meant); err != nil {
			t.Fatal(err)
		}
		if err := p.Apply(t.Context(), e.Meant...); err != nil {
			t.Fatal(err)
		}
		p.pruneTick(t.Context())
	}
	// A job whose events are in the log but not yet on the feed.
	s := jobStory("acme-etl", "EU", "not_delivered_yet")
	if err := l.Append(t.Context(), []events.Event{s.inserted(clk.Now(), events.StateRunning, events.Facts{})}); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		p.pruneTick(t.Context())
	}
	leftOut := testutil.ToFloat64(p.metrics.pruneLeftOut)
	failed := testutil.ToFloat64(p.metrics.sweeps.WithLabelValues(sweepFailed))
	full := testutil.ToFloat64(p.metrics.sweeps.WithLabelValues(sweepFull))
	done := testutil.ToFloat64(p.metrics.sweeps.WithLabelValues(sweepDone))
	if leftOut < 10 || failed < 1 || full < 1 || done < 1 {
		t.Errorf("%g jobs left out of the full queue; sweeps: %g failed, %g filled the queue again, %g done; want at least 10, 1, 1 and 1",
			leftOut, failed, full, done)
	}
	// The index could not be listed for a quarter of the run: a failed
	// sweep waits sweepBackoff for the next, where every entry's tick
	// would otherwise try one.
	if most := float64(minutes*time.Minute/4/sweepBackoff) + 1; failed > most {
		t.Errorf("%g sweeps failed while the index could not be listed for %s, want at most %g (one every %s)", failed, minutes*time.Minute/4, most, sweepBackoff)
	}
	want := append(listedKeys(p), s.key)
	slices.SortFunc(want, func(a, b events.JobKey) int { return compareIDs(&a, &b) })
	if diff := cmp.Diff(want, openKeys(t, l)); diff != "" {
		t.Errorf("open-jobs index against the listed jobs and the undelivered one, after %g jobs were left out of the prune queue (-want +index):\n%s", leftOut, diff)
	}
	if q := p.pruner.queued(); q != 0 {
		t.Errorf("%d jobs still queued for pruning", q)
	}
}

// TestSweepCountsNoJobTwice sweeps an index holding five finished jobs
// (each got a late RUNNING event after its DONE one) into a prune queue
// with room for two: the sweep queues two, reports the queue full, and
// counts none of the three it had no room for as left out, which the
// feed did when it left them out; the next sweeps, once the queue has
// drained, queue the rest.
func TestSweepCountsNoJobTwice(t *testing.T) {
	l := newLog(t)
	p, clk := newProjection(t, l, t0, Config{})
	p.pruner.max = 2
	for i := range 5 {
		s := jobStory("acme-etl", "EU", fmt.Sprintf("finished_%d", i))
		done := s.completed(t0.Add(time.Minute))
		late := s.inserted(t0, events.StateRunning, events.Facts{})
		for _, e := range []events.Event{done, late} { // the late one re-opens the job in the index
			if err := l.Append(t.Context(), []events.Event{e}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := len(openKeys(t, l)); n != 5 {
		t.Fatalf("the index holds %d jobs, want the 5 finished ones", n)
	}
	found, err := p.sweepIndex(t.Context())
	if !errors.Is(err, errQueueFull) || found != 2 {
		t.Errorf("sweep into a queue with room for 2 = %d queued, %v; want 2 and the queue full", found, err)
	}
	if left := testutil.ToFloat64(p.metrics.pruneLeftOut); left != 0 {
		t.Errorf("the sweep counted %g jobs as left out; want none: it is the feed's count", left)
	}
	for range 5 {
		p.pruner.sweepAgain()
		p.pruneTick(t.Context())
		clk.Advance(time.Second)
	}
	if keys := openKeys(t, l); len(keys) != 0 {
		t.Errorf("after the sweeps, the index holds %v; want none", keys)
	}
}

// finishingDuringPrunes is a log during each of whose prunes another job
// finishes, as under steady load.
type finishingDuringPrunes struct {
	eventLog
	p *Projection
	n int
}

func (f *finishingDuringPrunes) PruneOpen(ctx context.Context, keys []events.JobKey) error {
	f.n++
	f.p.pruner.add(events.JobKey{Project: "p", Location: "US", JobID: fmt.Sprint("finished_meanwhile_", f.n)})
	return f.eventLog.PruneOpen(ctx, keys)
}

// TestSweepUnderSteadyLoad: after the prune queue overflowed, the sweep of
// the index for the jobs it left out runs once the queue has room, even
// though jobs keep finishing during every flush, so that the queue is
// never empty.
func TestSweepUnderSteadyLoad(t *testing.T) {
	f := &finishingDuringPrunes{eventLog: newLog(t)}
	p, clk := newProjection(t, f, t0, Config{})
	f.p = p
	p.pruner.max = 4
	for i := range 5 { // one too many
		p.pruner.add(events.JobKey{Project: "p", Location: "US", JobID: fmt.Sprint("left_", i)})
	}
	for range 20 {
		p.pruneTick(t.Context())
		clk.Advance(time.Second)
	}
	if swept := testutil.ToFloat64(p.metrics.sweeps.WithLabelValues(sweepDone)) + testutil.ToFloat64(p.metrics.sweeps.WithLabelValues(sweepFull)); swept == 0 {
		t.Errorf("20 prune ticks after the queue overflowed, one job finishing during each flush: no sweep of the index (%d queued)", p.pruner.queued())
	}
}
