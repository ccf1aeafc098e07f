package main

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"net/http"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/bqobserver/bqobserver/internal/simulation"
)

// loadRun is one load run: a project of its own on the emulators, the
// service, the publisher and the samples taken from outside.
type loadRun struct {
	cmd     *LoadCmd
	env     *env
	globals *Globals
	emu     *loadEmulators
	binary  string
	work    string
	project string
	seed    uint64

	client  *http.Client
	svc     *loadService
	pub     *loadPublisher
	sampler *loadSampler
	fresh   *freshness
}

// measure runs the service under load and returns what it measured.
// Whatever happens after the run's project is set up, its publisher is
// closed and its resources are deleted from the emulators (clear): an
// emulator of the environment would otherwise keep them, and a backlog
// cut short, until it stops.
func (r *loadRun) measure(ctx context.Context) (_ *loadResult, err error) {
	env := childEnv(r.emu)
	ps, err := pubsub.NewClient(ctx, r.project, localOptions(r.emu.pubsub)...)
	if err != nil {
		return nil, fmt.Errorf("connecting to the Pub/Sub emulator: %w", err)
	}
	defer ps.Close()
	r.pub = newLoadPublisher(ps, r.globals.AuditTopic, r.env.log)
	defer func() {
		stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err = errors.Join(err, r.pub.close(stop))
		r.clear(stop, ps)
	}()
	if err := setupProject(ctx, r.binary, r.project, env); err != nil {
		return nil, err
	}
	r.client = &http.Client{Timeout: 10 * time.Second}
	// The load average before the run is read before its emulators start
	// (LoadCmd.runs): here it would be the warm-up's.
	res := &loadResult{loadBefore: math.NaN(), startedEmulators: len(r.emu.started) > 0}
	if r.cmd.Backlog > 0 {
		if err := r.preload(ctx, res); err != nil {
			return nil, err
		}
	}
	err = r.serve(ctx, env, res)
	if err == nil && r.cmd.Backlog > 0 {
		err = r.restart(ctx, env, res)
	}
	res.loadAfter = loadAverage()
	return res, err
}

// serve starts the service, loads it and stops it.
func (r *loadRun) serve(ctx context.Context, env []string, res *loadResult) (err error) {
	start := time.Now()
	r.svc, err = startLoadService(ctx, r.binary, r.project, r.work, r.project+"-service.log", env, r.cmd.ServiceFlags)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, r.svc.stop()) }()
	r.sampler = newLoadSampler(r)
	sampling, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.sampler.run(sampling) })
	defer func() { stopSampling(); wg.Wait(); r.sampler.finish(res) }()
	ready, err := r.svc.waitReady(ctx, r.client)
	if err != nil {
		return err
	}
	res.start, res.readyAfter = start, ready.Sub(start)
	if r.cmd.Backlog > 0 {
		return r.drain(ctx, res)
	}
	return r.steady(ctx, res)
}

// preload publishes the backlog (publishBacklog).
func (r *loadRun) preload(ctx context.Context, res *loadResult) error {
	start := time.Now()
	if err := publishBacklog(ctx, r.pub, r.seed, r.cmd.Backlog, r.cmd.Rate); err != nil {
		return err
	}
	if err := r.pub.lost(); err != nil {
		return err
	}
	res.published, res.preloadTime = int(r.pub.published.Load()), time.Since(start)
	r.env.log.Info("load: backlog published", "entries", res.published, "in", res.preloadTime.String())
	return nil
}

// publishBacklog publishes the backlog of n entries at rate (backlog)
// through pub.
func publishBacklog(ctx context.Context, pub *loadPublisher, seed uint64, n int, rate float64) error {
	entries, err := backlog(seed, n, rate)
	if err != nil {
		return err
	}
	for en := range entries {
		if ctx.Err() != nil {
			break
		}
		if err := pub.send(ctx, en); err != nil {
			return err
		}
	}
	return pub.sink.flush(ctx)
}

// backlog is a backlog of n entries of the load's organization (seed) that
// accumulated at rate entries a second up to now, so that their events are
// as recent as an outage of that length would leave them.
func backlog(seed uint64, n int, rate float64) (iter.Seq[simulation.Entry], error) {
	span := time.Duration(float64(n) / rate * float64(time.Second))
	perJob, err := entriesPerJob(seed, 0, span)
	if err != nil {
		return nil, err
	}
	org, err := newLoadOrg(seed, rate/perJob, time.Now().Add(-span).UTC())
	if err != nil {
		return nil, err
	}
	return func(yield func(simulation.Entry) bool) {
		i := 0
		for en := range org.Generate(2 * span) {
			if i == n || !yield(en) {
				return
			}
			i++
		}
	}, nil
}

// drain waits until the service has settled every entry of the backlog.
func (r *loadRun) drain(ctx context.Context, res *loadResult) error {
	end, err := r.sampler.waitSettled(ctx, res.published, 30*time.Minute)
	if err != nil {
		return err
	}
	res.from, res.to, res.until = res.start, end, end
	return nil
}

// settleWithin is how long after publishing a steady run waits for the
// service to settle what was published.
const settleWithin = 2 * time.Minute

// steady publishes at --rate for --duration while probing freshness, then
// waits (up to settleWithin) for the service to settle what was published:
// the rates are of the publishing window after the warm-up, lag and memory
// up to when the service had caught up (loadResult.settle).
// With --generate ahead it makes every entry before publishing the first.
func (r *loadRun) steady(ctx context.Context, res *loadResult) error {
	jobs, took, err := steadyJobs(r.seed, r.cmd.Rate, r.cmd.Warmup, r.cmd.Duration)
	if err != nil {
		return err
	}
	begin, publish, err := r.publisher(ctx, jobs, took*5/4+2*time.Second)
	if err != nil {
		return err
	}
	r.fresh = newFreshness(r)
	probing, stopProbing := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.fresh.run(probing) })
	defer func() { stopProbing(); wg.Wait() }()
	publishing, stop := context.WithDeadline(ctx, begin.Add(r.cmd.Duration))
	defer stop()
	// A publish cut short by the end of --duration is not a failure.
	if err := publish(publishing); err != nil && publishing.Err() == nil {
		return err
	}
	if err := r.pub.sink.flush(ctx); err != nil { // settles the publishes in flight, counting any dropped
		return err
	}
	if err := r.pub.lost(); err != nil {
		return err
	}
	res.from, res.to = begin.Add(r.cmd.Warmup), time.Now()
	res.published = int(r.pub.published.Load())
	res.settle(r.sampler.waitSettled(ctx, res.published, settleWithin))
	res.freshness = r.fresh.result(res.from, res.to, time.Now())
	return nil
}

// publisher returns when a steady run's publishing begins and what
// publishes it: the organization (jobs a second) simulated live from now,
// or the entries made ahead (planSteady), within lead, from the moment they
// are stamped for.
func (r *loadRun) publisher(ctx context.Context, jobs float64, lead time.Duration) (time.Time, func(context.Context) error, error) {
	if r.cmd.Generate == "live" {
		org, err := newLoadOrg(r.seed, jobs, time.Time{})
		if err != nil {
			return time.Time{}, nil, err
		}
		return time.Now(), func(ctx context.Context) error { return org.Run(ctx, r.pub.send) }, nil
	}
	making := time.Now()
	planned, start, err := planSteady(ctx, r.seed, jobs, r.cmd.Rate, r.cmd.Duration, lead)
	if err != nil {
		return time.Time{}, nil, err
	}
	r.env.log.Info("load: entries made ahead", "entries", len(planned), "in", time.Since(making).String(),
		"publishing_in", time.Until(start).Round(time.Millisecond).String())
	if late := time.Since(start); late > 0 {
		r.env.log.Warn("load: making the entries took longer than planned; the first are published late", "late", late.String())
	}
	return start, func(ctx context.Context) error { return r.pub.replay(ctx, planned) }, nil
}
