package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

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

// settled is how many deliveries reached a final outcome.
func (s *loadSample) settled() float64 { return s.received - s.handedBack }

// loadSampler samples the service every second.
type loadSampler struct {
	lr *loadRun

	mu      sync.Mutex
	samples []loadSample
	err     error // the last failed scrape, reported if nothing else is
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

func (s *loadSampler) take(ctx context.Context) {
	r := s.lr
	sm := loadSample{at: time.Now(), published: float64(r.pub.published.Load())}
	m, err := measure.Scrape(ctx, r.client, r.svc.base+"/metrics")
	if err != nil {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		return
	}
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

// latest is the last sample, if any.
func (s *loadSampler) latest() (loadSample, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return loadSample{}, false
	}
	return s.samples[len(s.samples)-1], true
}

// waitSettled waits until the service has settled n deliveries and returns
// the time of the sample that showed it.
func (s *loadSampler) waitSettled(ctx context.Context, n int, within time.Duration) (time.Time, error) {
	deadline := time.Now().Add(within)
	for {
		if sm, ok := s.latest(); ok && sm.settled() >= float64(n) {
			return sm.at, nil
		}
		if time.Now().After(deadline) {
			sm, _ := s.latest()
			return time.Time{}, fmt.Errorf("the service settled %.0f of %d entries within %s", sm.settled(), n, within)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// finish takes a last sample and computes the result from all of them.
func (s *loadSampler) finish(res *loadResult) {
	s.take(context.Background())
	s.mu.Lock()
	defer s.mu.Unlock()
	res.compute(s.samples, s.lr.emu.gc(s.lr.env.log), s.lr.cmd.Interval)
}
