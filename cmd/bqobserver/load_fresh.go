package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/bqobserver/bqobserver/internal/measure"
)

// freshnessPoll is how often the list is asked for the probe project's
// newest jobs: the resolution of the freshness measured.
const freshnessPoll = 100 * time.Millisecond

// freshness measures how long a job takes from the publication of its
// first listable audit entry to its first appearance in the list API: it
// polls GET /api/v1/jobs for the probe project's newest jobs, as a
// dashboard would, and notes when each job shows up.
type freshness struct {
	lr *loadRun

	mu   sync.Mutex
	seen map[string]time.Time // job id: when the list first showed it
}

// freshnessResult is the freshness of the jobs first published within a
// window. A probe the list never showed counts as infinitely late
// (unseen), so a quantile above the share seen is unseen, not the
// quantile of the probes that were luckier.
type freshnessResult struct {
	probes, seen int
	p50, p99     time.Duration // unseen, or -1 without probes
	// watched is how long, at least, each probe was polled for: from the
	// last probe's publication until the polls stopped.
	watched time.Duration
}

// unseen is the freshness of a probe the list never showed.
const unseen = time.Duration(math.MaxInt64)

func newFreshness(r *loadRun) *freshness { return &freshness{lr: r, seen: map[string]time.Time{}} }

// run polls until ctx ends.
func (f *freshness) run(ctx context.Context) {
	t := time.NewTicker(freshnessPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if project := f.lr.pub.probeProject(); project != "" {
			f.poll(ctx, project)
		}
	}
}

// poll lists the project's 100 most recently created jobs.
func (f *freshness) poll(ctx context.Context, project string) {
	q := url.Values{"project": {project}, "sort": {"-created"}, "limit": {"100"}}
	ids, err := f.list(ctx, q)
	if err != nil {
		return // the next poll tries again; a missed poll only coarsens the result
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if _, ok := f.seen[id]; !ok {
			f.seen[id] = now
		}
	}
}

func (f *freshness) list(ctx context.Context, q url.Values) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.lr.svc.base+"/api/v1/jobs?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	res, err := f.lr.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("listing jobs: %s", res.Status)
	}
	var page struct {
		Jobs []struct {
			Key struct {
				JobID string `json:"job_id"`
			} `json:"key"`
		} `json:"jobs"`
	}
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil {
		return nil, fmt.Errorf("reading the list: %w", err)
	}
	ids := make([]string, len(page.Jobs))
	for i, j := range page.Jobs {
		ids[i] = j.Key.JobID
	}
	return ids, nil
}

// result is the freshness of the probe jobs first published in [from, to),
// polled for until until. A job the list never showed (it finished between
// two polls, was pushed out of the newest hundred by jobs created after
// it, or was not listed in time) counts as unseen: infinitely late.
func (f *freshness) result(from, to, until time.Time) freshnessResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.lr.pub
	p.mu.Lock()
	defer p.mu.Unlock()
	var r freshnessResult
	var ds []time.Duration
	var last time.Time
	for id, published := range p.probes {
		if published.Before(from) || !published.Before(to) {
			continue
		}
		r.probes++
		if published.After(last) {
			last = published
		}
		if seen, ok := f.seen[id]; ok {
			r.seen++
			ds = append(ds, max(seen.Sub(published), 0))
		} else {
			ds = append(ds, unseen)
		}
	}
	r.p50, r.p99 = measure.Percentile(ds, 50), measure.Percentile(ds, 99)
	r.watched = until.Sub(last)
	return r
}
