package main

import (
	"context"
	"fmt"
	"time"

	"github.com/bqobserver/bqobserver/internal/simulation"
)

// maxAheadEntries bounds the entries a steady run makes ahead (--generate
// ahead), which it holds in memory until they are published: about 5.5 KB
// each (2.9 GB of RSS for 527,000 entries), so 11 GB at most.
const maxAheadEntries = 2_000_000

// plannedEntry is an entry made ahead of its run: its message, when it is
// due, and what the freshness probes need of it.
type plannedEntry struct {
	at    time.Time
	data  []byte
	attrs map[string]string
	probe probe
}

// planSteady makes the entries of a steady run of d ahead (--generate
// ahead): those of the run's organization (seed, jobs a second) started
// lead from now, which must be long enough to make them (steadyJobs times
// making them once; a lead too short only makes the run's first entries
// late, which its warm-up leaves out, and the load command logs it). Each
// entry is stamped as the simulation publishes it, so that published when
// due it is what a live run would have published then. It returns the
// entries in the order they are due, and the moment the run starts. rate is
// the entries a second expected, to size the slice.
func planSteady(ctx context.Context, seed uint64, jobs, rate float64, d, lead time.Duration) ([]plannedEntry, time.Time, error) {
	start := time.Now().Add(lead).UTC()
	org, err := newLoadOrg(seed, jobs, start)
	if err != nil {
		return nil, time.Time{}, err
	}
	planned := make([]plannedEntry, 0, int(rate*d.Seconds()))
	for en := range org.Generate(d) {
		if err := ctx.Err(); err != nil {
			return nil, time.Time{}, fmt.Errorf("making the run's entries: %w", err)
		}
		planned = append(planned, plannedEntry{at: en.Published, data: en.Data, attrs: en.Attributes, probe: probeOf(&en)})
	}
	return planned, start, nil
}

// aheadSlack is how early an entry made ahead may be published: waiting
// for each of thousands a second by itself would cost more than the
// moment it saves.
const aheadSlack = time.Millisecond

// replay publishes each planned entry when it is due (at most aheadSlack
// early), in order, until ctx ends or every entry is published. Entries
// already due go at once. It lets go of each entry once published.
func (p *loadPublisher) replay(ctx context.Context, planned []plannedEntry) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := range planned {
		e := &planned[i]
		if wait := time.Until(e.at); wait > aheadSlack {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if err := p.publish(ctx, simulation.Entry{Data: e.data, Attributes: e.attrs}, e.probe); err != nil {
			return err
		}
		*e = plannedEntry{}
	}
	return nil
}
