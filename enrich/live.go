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
// any number of browsers costs one call per TTL.
type liveCache struct {
	api jobsAPI
	ttl time.Duration
	now func() time.Time
	log *slog.Logger

	group singleflight.Group
	mu    sync.Mutex
	items map[events.JobKey]liveItem
}

type liveItem struct {
	live *running.Live
	at   time.Time
}

func newLiveCache(api jobsAPI, ttl time.Duration, now func() time.Time, log *slog.Logger) *liveCache {
	return &liveCache{api: api, ttl: ttl, now: now, log: log, items: map[events.JobKey]liveItem{}}
}

// Live returns the job as the jobs API reports it: its state, query
// stages and timeline, at most LiveTTL old. Failures are not kept.
func (e *Enricher) Live(ctx context.Context, key events.JobKey) (*running.Live, error) {
	return e.live.get(ctx, key)
}

func (c *liveCache) get(ctx context.Context, key events.JobKey) (*running.Live, error) {
	now := c.now()
	c.mu.Lock()
	it, ok := c.items[key]
	c.mu.Unlock()
	if ok && now.Sub(it.at) < c.ttl {
		return it.live, nil
	}
	ch := c.group.DoChan(key.String(), func() (any, error) {
		// The call belongs to every request waiting for it, not to the
		// first one's context.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		j, err := c.api.Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("reading job %s from the BigQuery jobs API: %w", key, err)
		}
		l, dropped := liveOf(j, c.now())
		if len(dropped) > 0 {
			c.log.Warn("implausible values left out of a job's live detail", "job", key.String(), "dropped", dropped)
		}
		c.store(key, l)
		return l, nil
	})
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
