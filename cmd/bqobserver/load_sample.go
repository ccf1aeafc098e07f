package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/events/ingest"
	"github.com/bqobserver/bqobserver/internal/measure"
)

// loadSample is what a load run sees of the service at one moment: its
// counters, lag gauges and histograms and Go heap from /metrics, and the
// CPU time and memory of the processes involved from /proc.
type loadSample struct {
	at                                                    time.Time
	published                                             float64 // entries the load published
	received, appended, skipped, deadLettered, handedBack float64
	pruned                                                float64 // jobs the live feed pruned from the open-jobs index
	// Lag: the oldest-unprocessed gauges and the lag histograms of ingest
	// and of the running-jobs feed.
	ingestOldest, feedOldest float64
	ingestLag, feedLag       measure.Histogram
	// logWrite is the appender's writes to the event log (each a batch of
	// events), whatever their result: it tells a stall of the log from
	// one of the service.
	logWrite                        measure.Histogram
	heap                            float64 // Go heap in use, bytes
	service, pubsub, bigtable, load measure.Usage
	// machine is the CPU time of the whole machine (zero when /proc/stat
	// could not be read, which makes its shares NaN).
	machine measure.Machine
}

// settled is how many deliveries reached a final outcome: a redelivery
// counts again (see caughtUp).
func (s *loadSample) settled() float64 { return s.received - s.handedBack }

// loadSampler samples the service every second.
type loadSampler struct {
	lr *loadRun

	mu      sync.Mutex
	samples []loadSample
	failed  int   // samples not taken: the scrape of /metrics failed
	err     error // the last such failure
}

func newLoadSampler(r *loadRun) *loadSampler { return &loadSampler{lr: r} }

// run samples until ctx ends.
func (s *loadSampler) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		s.take(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// take takes a sample, or counts one that failed. A sample's moment is
// when its metrics are in hand, and the rest is read then: a sample timed
// before the scrape would date what it shows early by the scrape's
// latency, and the end of a drain with it.
func (s *loadSampler) take(ctx context.Context) {
	r := s.lr
	m, err := measure.Scrape(ctx, r.client, r.svc.base+"/metrics")
	if err != nil {
		if ctx.Err() == nil { // a scrape cut short by the end of sampling is no failure
			s.mu.Lock()
			s.failed, s.err = s.failed+1, err
			s.mu.Unlock()
		}
		return
	}
	sm := loadSample{at: time.Now(), published: float64(r.pub.published.Load())}
	sm.fromMetrics(m)
	sm.service = usage(r.svc.pid)
	sm.pubsub, sm.bigtable = usage(r.emu.pid("pubsub")), usage(r.emu.pid("bigtable"))
	sm.load = usage(os.Getpid())
	sm.machine, _ = measure.MachineCPU()
	s.mu.Lock()
	s.samples = append(s.samples, sm)
	s.mu.Unlock()
}

func (sm *loadSample) fromMetrics(m measure.Metrics) {
	const feed = runningFeed
	sm.received = m.Sum("bqobserver_ingest_received_total")
	sm.appended = m.Sum("bqobserver_ingest_appended_total")
	sm.skipped = m.Sum("bqobserver_ingest_skipped_total")
	sm.deadLettered = m.Sum("bqobserver_ingest_dead_lettered_total")
	sm.handedBack = m.Sum("bqobserver_ingest_handed_back_total")
	sm.pruned = m.Sum("bqobserver_running_pruned_jobs_total")
	sm.ingestOldest = m.Sum("bqobserver_handler_oldest_unprocessed_seconds", "handler", ingest.DefaultHandlerName)
	sm.feedOldest = m.Sum("bqobserver_handler_oldest_unprocessed_seconds", "handler", feed)
	sm.ingestLag = m.Histogram("bqobserver_handler_lag_seconds", "handler", ingest.DefaultHandlerName)
	sm.feedLag = m.Histogram("bqobserver_handler_lag_seconds", "handler", feed)
	sm.logWrite = m.Histogram("bqobserver_appender_append_seconds")
	sm.heap = m.Sum("go_memstats_heap_inuse_bytes")
}

// usage reads a process's usage; zero for no process or one that is gone.
func usage(pid int) measure.Usage {
	if pid == 0 {
		return measure.Usage{}
	}
	u, _ := measure.ProcessUsage(pid) // a process that is gone used nothing more
	return u
}

// errNotSettled is a service that did not settle what was published
// within the bound it was given.
var errNotSettled = errors.New("the service did not settle every entry")

// settleQuiet is how long after its last settlement the service's
// oldest-unprocessed gauge may go on showing that settlement's lag, and a
// second more for the sample that sees it at 0.
const settleQuiet = bus.LagHold + time.Second

// waitSettled waits until the service has settled n entries (caughtUp) and
// returns when it did. If it has not within the bound, it returns the time
// of the last sample and errNotSettled; if ctx ends first, ctx's error.
func (s *loadSampler) waitSettled(ctx context.Context, n int, within time.Duration) (time.Time, error) {
	start := time.Now()
	for {
		s.mu.Lock()
		at, ok := caughtUp(s.samples, float64(n))
		var last loadSample
		if len(s.samples) > 0 {
			last = s.samples[len(s.samples)-1]
		}
		s.mu.Unlock()
		switch {
		case ok && at.Sub(start) <= within:
			return at, nil
		case ok || time.Since(start) > within+settleQuiet:
			return last.at, fmt.Errorf("%w: it settled %.0f deliveries of %d entries within %s", errNotSettled, last.settled(), n, within)
		}
		select {
		case <-ctx.Done():
			return last.at, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// caughtUp says when, by samples, the service had settled n entries: the
// first sample with the settled count the last one shows, once that is at
// least n and the service holds no entry (its oldest-unprocessed gauge is
// 0). Deliveries count again when redelivered, so a count of n alone may
// be reached with entries still waiting; the gauge is 0 only when the
// service holds none and has settled none for bus.LagHold, after which its
// count is final.
func caughtUp(samples []loadSample, n float64) (time.Time, bool) {
	if len(samples) == 0 {
		return time.Time{}, false
	}
	last := samples[len(samples)-1]
	if last.settled() < n || last.ingestOldest > 0 {
		return time.Time{}, false
	}
	at := last.at
	for i := len(samples) - 1; i >= 0 && samples[i].settled() == last.settled(); i-- {
		at = samples[i].at
	}
	return at, true
}

// finish takes a last sample and computes the result from all of them.
func (s *loadSampler) finish(res *loadResult) {
	s.take(context.Background())
	s.mu.Lock()
	defer s.mu.Unlock()
	res.sampled, res.sampleFailures = len(s.samples), s.failed
	if s.err != nil {
		res.sampleErr = s.err.Error()
	}
	res.compute(s.samples, s.lr.emu.gc(s.lr.env.log), s.lr.cmd.Interval)
}
