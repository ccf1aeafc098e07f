package enrich

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	bq "google.golang.org/api/bigquery/v2"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/projections/running"
)

// liveCache answers job detail requests with a jobs.get, reused for a TTL
// and shared by requests that arrive together, so that a job kept open in
// any number of browsers costs one call per TTL. The call waits for the
// rate limit only briefly (jobsapi.Client.TryGet) and ends when its last
// waiter leaves: detail requests, which come in bursts, never hold the
// rate limit's tokens ahead of the polls, and an abandoned call does not
// go on retrying.
type liveCache struct {
	api jobsAPI
	ttl time.Duration
	now func() time.Time
	log *slog.Logger

	group   singleflight.Group
	mu      sync.Mutex
	items   map[events.JobKey]liveItem
	flights map[string]*flight // by job, the shared calls being waited for
}

type liveItem struct {
	live *running.Live
	at   time.Time
}

// flight is the context of a shared jobs.get, and how many requests wait
// for it: the call belongs to all of them, not to the first one's
// context, and is cancelled when the last one leaves.
type flight struct {
	ctx     context.Context
	cancel  context.CancelFunc
	waiters int
}

// liveCallTimeout bounds a shared jobs.get even while requests wait for it.
const liveCallTimeout = time.Minute

func newLiveCache(api jobsAPI, ttl time.Duration, now func() time.Time, log *slog.Logger) *liveCache {
	return &liveCache{api: api, ttl: ttl, now: now, log: log, items: map[events.JobKey]liveItem{}, flights: map[string]*flight{}}
}

// Live returns the job as the jobs API reports it: its state, query
// stages and timeline, at most LiveTTL old. Failures are not kept; when
// the shared rate limit has no token for it soon, it fails with
// jobsapi.ErrRateLimited.
func (e *Enricher) Live(ctx context.Context, key events.JobKey) (*running.Live, error) {
	return e.live.get(ctx, key)
}

func (c *liveCache) get(ctx context.Context, key events.JobKey) (*running.Live, error) {
	if l, ok := c.cached(key); ok {
		return l, nil
	}
	name := key.String()
	f := c.join(ctx, name)
	defer c.leave(name, f)
	ch := c.group.DoChan(name, func() (any, error) { return c.fetch(f.ctx, key) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*running.Live), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// cached returns the job's live detail if it is younger than the TTL.
func (c *liveCache) cached(key events.JobKey) (*running.Live, bool) {
	c.mu.Lock()
	it, ok := c.items[key]
	c.mu.Unlock()
	if ok && c.now().Sub(it.at) < c.ttl {
		return it.live, true
	}
	return nil, false
}

// join counts a request waiting for the job's shared call, and returns
// the call's flight, begun if none is waited for.
func (c *liveCache) join(ctx context.Context, name string) *flight {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.flights[name]
	if f == nil {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), liveCallTimeout)
		f = &flight{ctx: fctx, cancel: cancel}
		c.flights[name] = f
	}
	f.waiters++
	return f
}

// leave counts a request that stopped waiting; the last one cancels the
// call and makes the next request start another (singleflight's Forget).
func (c *liveCache) leave(name string, f *flight) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.waiters--; f.waiters > 0 {
		return
	}
	f.cancel()
	delete(c.flights, name)
	c.group.Forget(name)
}

// fetch asks the jobs API about the job, and keeps its live detail.
func (c *liveCache) fetch(ctx context.Context, key events.JobKey) (*running.Live, error) {
	j, err := c.api.TryGet(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("reading job %s from the BigQuery jobs API: %w", key, err)
	}
	l, dropped := liveOf(j, c.now())
	if len(dropped) > 0 {
		c.log.Warn("implausible values left out of a job's live detail", "job", key.String(), "dropped", dropped)
	}
	c.store(key, l)
	return l, nil
}

// store keeps l and forgets the items older than the TTL.
func (c *liveCache) store(key events.JobKey, l *running.Live) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for k, it := range c.items {
		if now.Sub(it.at) >= c.ttl {
			delete(c.items, k)
		}
	}
	c.items[key] = liveItem{live: l, at: now}
}

// liveOf converts a jobs.get answer, observed at at, for the job detail,
// following the plausibility rule (events/plausible.go): a stage's count
// or time that cannot be true is left out, and so is a timeline sample
// with a number that cannot be true. It returns what it left out.
func liveOf(j *bq.Job, at time.Time) (*running.Live, []events.Dropped) {
	l := &running.Live{ObservedAt: at.UTC(), Stages: []running.Stage{}, Timeline: []running.TimelineSample{}}
	if j.Status != nil {
		l.State = j.Status.State
	}
	if j.Statistics == nil || j.Statistics.Query == nil {
		return l, nil
	}
	var d liveDropper
	q := j.Statistics.Query
	for _, s := range q.QueryPlan {
		l.Stages = append(l.Stages, stageOf(s, at, &d))
	}
	for i, s := range q.Timeline {
		sample := running.TimelineSample{ElapsedMs: s.ElapsedMs, SlotMs: s.TotalSlotMs,
			CompletedUnits: s.CompletedUnits, ActiveUnits: s.ActiveUnits, PendingUnits: s.PendingUnits}
		kept := true
		for _, n := range []int64{sample.ElapsedMs, sample.SlotMs, sample.CompletedUnits, sample.ActiveUnits, sample.PendingUnits} {
			kept = d.count(fmt.Sprintf("timeline[%d]", i), n) != nil && kept
		}
		if kept {
			l.Timeline = append(l.Timeline, sample)
		}
	}
	return l, d.dropped
}

// liveDropper applies the plausibility rule to the values of a live
// detail, collecting what it leaves out.
type liveDropper struct{ dropped []events.Dropped }

// count returns &n, or nil when n is not a plausible count.
func (d *liveDropper) count(field string, n int64) *int64 {
	if reason := events.ImplausibleCount(n); reason != "" {
		d.dropped = append(d.dropped, events.Dropped{Field: field, Reason: reason, Value: strconv.FormatInt(n, 10)})
		return nil
	}
	return &n
}

// time returns the API's milliseconds since 1970 as a time, zero when not
// known or not a plausible time of a job observed at at.
func (d *liveDropper) time(field string, ms int64, at time.Time) time.Time {
	t := msTime(ms)
	if t.IsZero() {
		return t
	}
	if reason := events.ImplausibleTime(t, at); reason != "" {
		d.dropped = append(d.dropped, events.Dropped{Field: field, Reason: reason, Value: strconv.FormatInt(ms, 10)})
		return time.Time{}
	}
	return t
}

func stageOf(s *bq.ExplainQueryStage, at time.Time, d *liveDropper) running.Stage {
	f := func(name string) string { return fmt.Sprintf("stage %d %s", s.Id, name) }
	return running.Stage{
		ID: s.Id, Name: s.Name, Status: s.Status, InputStages: s.InputStages,
		ParallelInputs: d.count(f("parallel_inputs"), s.ParallelInputs), CompletedParallelInputs: d.count(f("completed_parallel_inputs"), s.CompletedParallelInputs),
		RecordsRead: d.count(f("records_read"), s.RecordsRead), RecordsWritten: d.count(f("records_written"), s.RecordsWritten),
		SlotMs:    d.count(f("slot_ms"), s.SlotMs),
		StartTime: d.time(f("start_time"), s.StartMs, at), EndTime: d.time(f("end_time"), s.EndMs, at),
		WaitRatioAvg: s.WaitRatioAvg, WaitRatioMax: s.WaitRatioMax, ReadRatioAvg: s.ReadRatioAvg, ReadRatioMax: s.ReadRatioMax,
		ComputeRatioAvg: s.ComputeRatioAvg, ComputeRatioMax: s.ComputeRatioMax, WriteRatioAvg: s.WriteRatioAvg, WriteRatioMax: s.WriteRatioMax,
	}
}
