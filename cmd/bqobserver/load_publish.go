package main

import (
	"context"
	"fmt"
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
	sink := newTopicSink(c, topic, log)
	// Batches of up to 1,000 entries or 50 ms, as a busy sink sends them,
	// rather than the client's 100 or 10 ms: at 5,000 entries a second, 20
	// publish requests a second instead of 100, which the load command and
	// the Pub/Sub emulator would otherwise spend CPU on beside the service
	// they measure, on the same machine.
	sink.pub.PublishSettings.CountThreshold = 1000
	sink.pub.PublishSettings.DelayThreshold = 50 * time.Millisecond
	sink.pub.PublishSettings.ByteThreshold = 8 << 20
	return &loadPublisher{sink: sink, probes: map[string]time.Time{}, done: map[string]bool{}}
}

func (p *loadPublisher) send(ctx context.Context, en simulation.Entry) error {
	return p.publish(ctx, en, probeOf(&en))
}

// publish publishes en, noting probe first.
func (p *loadPublisher) publish(ctx context.Context, en simulation.Entry, probe probe) error {
	p.note(probe)
	if err := p.sink.send(ctx, en); err != nil {
		return err
	}
	p.published.Add(1)
	return nil
}

// probe is what the freshness probes need of an entry: the job and the
// state of its first event (ok: it carries one).
type probe struct {
	project, jobID string
	state          events.State
	ok             bool
}

func probeOf(en *simulation.Entry) probe {
	if len(en.Meant) == 0 {
		return probe{}
	}
	ev := &en.Meant[0]
	return probe{project: ev.Job.Project, jobID: ev.Job.JobID, state: ev.State, ok: true}
}

// note records the first listable entry of each job of the probe project.
// A job whose completion came first is never listed, and is left out.
func (p *loadPublisher) note(pr probe) {
	if !pr.ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.project == "" {
		p.project = pr.project
	}
	id := pr.jobID
	switch {
	case pr.project != p.project:
	case pr.state == events.StateDone:
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

// lost reports the entries the sink dropped because the audit topic did
// not exist: the service can never settle them, so a run that waits for
// them would wait out its bound, and its rates would be wrong.
func (p *loadPublisher) lost() error {
	if n := p.sink.dropped; n > 0 {
		return fmt.Errorf("the audit topic %s does not exist: %d entries were dropped (is --audit-topic the topic setup makes?)", p.sink.topic, n)
	}
	return nil
}

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
	if n == 0 {
		return 0, fmt.Errorf("the simulated organization published no entries from %s to %s after its start: too short to tell its entries per job", from, to)
	}
	return float64(n) / (rate * (to - from).Seconds()), nil
}

// steadyJobs is how many jobs a second the organization of a steady run
// (seed) submits so that it publishes at least rate entries a second (and
// at most steadyJobsOver more) from the simulated moment from to to after
// its start, and how long making the entries up to to took it the last
// time. entriesPerJob's estimate misses by about a tenth at thousands of
// entries a second, and the entries neither grow in proportion to the jobs
// nor smoothly (each rate draws other jobs), so steadyJobs makes the run's
// entries (without keeping them) and corrects the rate in proportion, up
// to steadyJobsTries times. If no rate tried lands in the band, it returns
// the lowest that reached rate, or the last.
func steadyJobs(seed uint64, rate float64, from, to time.Duration) (float64, time.Duration, error) {
	perJob, err := entriesPerJob(seed, from, to)
	if err != nil {
		return 0, 0, err
	}
	jobs, best := rate/perJob, 0.0
	var took time.Duration
	for range steadyJobsTries {
		var got float64
		if got, took, err = steadyRate(seed, jobs, from, to); err != nil || got == 0 {
			return jobs, took, err
		}
		if got >= rate && got <= (1+steadyJobsOver)*rate {
			return jobs, took, nil
		}
		if got >= rate && (best == 0 || jobs < best) {
			best = jobs
		}
		jobs *= (1 + steadyJobsOver/2) * rate / got
	}
	if best > 0 {
		return best, took, nil
	}
	return jobs, took, nil
}

const (
	steadyJobsOver  = 0.02
	steadyJobsTries = 5
)

// steadyRate is how many entries a second the organization (seed, jobs a
// second) publishes from the simulated moment from to to after its start,
// and how long making them took.
func steadyRate(seed uint64, jobs float64, from, to time.Duration) (float64, time.Duration, error) {
	start := time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC)
	org, err := newLoadOrg(seed, jobs, start)
	if err != nil {
		return 0, 0, err
	}
	begin := time.Now()
	n := 0
	for en := range org.Generate(to) {
		if en.Published.Sub(start) >= from {
			n++
		}
	}
	return float64(n) / (to - from).Seconds(), time.Since(begin), nil
}

// newLoadOrg is the run's organization, submitting jobs a second, and
// starting at start (zero: now, in real time).
func newLoadOrg(seed uint64, jobs float64, start time.Time) (*simulation.Org, error) {
	return simulation.New(simulation.Config{Seed: seed, Rate: jobs, Start: start})
}
