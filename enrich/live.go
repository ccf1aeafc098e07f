package enrich

import (
	"context"
	"fmt"
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

	group singleflight.Group
	mu    sync.Mutex
	items map[events.JobKey]liveItem
}

type liveItem struct {
	live *running.Live
	at   time.Time
}

func newLiveCache(api jobsAPI, ttl time.Duration, now func() time.Time) *liveCache {
	return &liveCache{api: api, ttl: ttl, now: now, items: map[events.JobKey]liveItem{}}
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
		l := liveOf(j, c.now())
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

// liveOf converts a jobs.get answer for the job detail.
func liveOf(j *bq.Job, at time.Time) *running.Live {
	l := &running.Live{ObservedAt: at.UTC(), Stages: []running.Stage{}, Timeline: []running.TimelineSample{}}
	if j.Status != nil {
		l.State = j.Status.State
	}
	if j.Statistics == nil || j.Statistics.Query == nil {
		return l
	}
	q := j.Statistics.Query
	for _, s := range q.QueryPlan {
		l.Stages = append(l.Stages, stageOf(s))
	}
	for _, s := range q.Timeline {
		l.Timeline = append(l.Timeline, running.TimelineSample{ElapsedMs: s.ElapsedMs, SlotMs: s.TotalSlotMs,
			CompletedUnits: s.CompletedUnits, ActiveUnits: s.ActiveUnits, PendingUnits: s.PendingUnits})
	}
	return l
}

func stageOf(s *bq.ExplainQueryStage) running.Stage {
	return running.Stage{
		ID: s.Id, Name: s.Name, Status: s.Status, InputStages: s.InputStages,
		ParallelInputs: s.ParallelInputs, CompletedParallelInputs: s.CompletedParallelInputs,
		RecordsRead: s.RecordsRead, RecordsWritten: s.RecordsWritten, SlotMs: s.SlotMs,
		StartTime: msTime(s.StartMs), EndTime: msTime(s.EndMs),
		WaitRatioAvg: s.WaitRatioAvg, WaitRatioMax: s.WaitRatioMax, ReadRatioAvg: s.ReadRatioAvg, ReadRatioMax: s.ReadRatioMax,
		ComputeRatioAvg: s.ComputeRatioAvg, ComputeRatioMax: s.ComputeRatioMax, WriteRatioAvg: s.WriteRatioAvg, WriteRatioMax: s.WriteRatioMax,
	}
}
