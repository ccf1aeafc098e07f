package main

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/simulation"
)

// loadPublisher publishes a simulated organization's audit entries to the
// run's audit topic, as a log sink would, counting them, and notes when a
// job of the probe project was first published in a state that lists it,
// for the freshness of the list.
type loadPublisher struct {
	sink      *topicSink
	published atomic.Int64

	mu      sync.Mutex
	project string               // the probe project: the first job's
	probes  map[string]time.Time // job id: when it was first published listable
	done    map[string]bool      // job ids whose completion was published
}

func newLoadPublisher(c *pubsub.Client, topic string, log *slog.Logger) *loadPublisher {
	return &loadPublisher{sink: newTopicSink(c, topic, log), probes: map[string]time.Time{}, done: map[string]bool{}}
}

func (p *loadPublisher) send(ctx context.Context, en simulation.Entry) error {
	p.note(en)
	if err := p.sink.send(ctx, en); err != nil {
		return err
	}
	p.published.Add(1)
	return nil
}

// note records the first listable entry of each job of the probe project.
// A job whose completion came first is never listed, and is left out.
func (p *loadPublisher) note(en simulation.Entry) {
	if len(en.Meant) == 0 {
		return
	}
	ev := en.Meant[0]
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.project == "" {
		p.project = ev.Job.Project
	}
	id := ev.Job.JobID
	switch {
	case ev.Job.Project != p.project:
	case ev.State == events.StateDone:
		p.done[id] = true
	case !p.done[id]:
		if _, seen := p.probes[id]; !seen {
			p.probes[id] = time.Now()
		}
	}
}

// probeProject is the project whose jobs are probed, "" before any job.
func (p *loadPublisher) probeProject() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.project
}

// close waits for the publishes still outstanding, until ctx ends.
func (p *loadPublisher) close(ctx context.Context) error { return p.sink.close(ctx) }

// entriesPerJob is how many entries a second the organization publishes
// per job it submits a second, from the simulated moment from to to after
// its start: jobs complete minutes after they start, so the rate of entries
// climbs for a while; measured in virtual time at 20 jobs a second.
func entriesPerJob(seed uint64, from, to time.Duration) (float64, error) {
	const rate = 20
	start := time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC)
	org, err := simulation.New(simulation.Config{Seed: seed, Rate: rate, Start: start})
	if err != nil {
		return 0, err
	}
	n := 0
	for en := range org.Generate(to) {
		if en.Published.Sub(start) >= from {
			n++
		}
	}
	return float64(n) / (rate * (to - from).Seconds()), nil
}

// newLoadOrg is the run's organization, submitting jobs so that it
// publishes about entries a second, and starting at start (zero: now, in
// real time).
func newLoadOrg(seed uint64, entries, perJob float64, start time.Time) (*simulation.Org, error) {
	return simulation.New(simulation.Config{Seed: seed, Rate: entries / perJob, Start: start})
}
