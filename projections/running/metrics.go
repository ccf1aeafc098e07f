package running

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the projection's Prometheus collectors, registered on
// Config.Registerer. They tell what a restart costs and whether the log's
// open-jobs index stays close to the running jobs:
//
//   - bqobserver_running_rebuild_index_entries: entries of the open-jobs
//     index the last rebuild read (every job it had to fold);
//   - bqobserver_running_rebuild_running_jobs: jobs listed when it ended;
//   - bqobserver_running_rebuild_finished_jobs: entries it found finished
//     and pruned (what the live feed had not pruned before the restart);
//   - bqobserver_running_rebuild_seconds: how long it took, from listing
//     the index to the list being complete;
//   - bqobserver_running_pruned_jobs_total: finished jobs the live feed
//     removed from the index since the start;
//   - bqobserver_running_prune_queued_jobs: finished jobs waiting to be
//     removed (at most maxPending);
//   - bqobserver_running_prune_left_out_jobs_total: finished jobs the live
//     feed found that queue full for, for a sweep of the index to find once
//     it drained (a sweep that fills it again counts as full, below);
//   - bqobserver_running_index_sweeps_total: those sweeps, by outcome.
//
// The rebuild gauges are 0 until the first rebuild has succeeded.
type metrics struct {
	rebuildEntries  prometheus.Gauge
	rebuildRunning  prometheus.Gauge
	rebuildFinished prometheus.Gauge
	rebuildSeconds  prometheus.Gauge
	pruned          prometheus.Counter
	pruneQueued     prometheus.GaugeFunc
	pruneLeftOut    prometheus.Counter
	sweeps          *prometheus.CounterVec // by outcome: done, full, failed
}

// newMetrics makes the collectors and registers them on reg, if any;
// queued tells how many finished jobs wait to be pruned.
func newMetrics(reg prometheus.Registerer, queued func() int) (*metrics, error) {
	const ns, sub = "bqobserver", "running"
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	m := &metrics{
		rebuildEntries: gauge("rebuild_index_entries", "Entries of the event log's open-jobs index the last rebuild read."),
		rebuildRunning: gauge("rebuild_running_jobs", "Jobs in the running list when the last rebuild ended."),
		rebuildFinished: gauge("rebuild_finished_jobs",
			"Entries of the open-jobs index the last rebuild found finished and pruned: what the live feed had left there before the start."),
		rebuildSeconds: gauge("rebuild_seconds", "Duration of the last rebuild from the event log."),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "pruned_jobs_total",
			Help: "Finished jobs the live feed removed from the event log's open-jobs index."}),
		pruneQueued: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "prune_queued_jobs",
			Help: "Finished jobs waiting to be removed from the event log's open-jobs index."}, func() float64 { return float64(queued()) }),
		pruneLeftOut: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "prune_left_out_jobs_total",
			Help: "Finished jobs not queued for removal from the open-jobs index because the queue was full; a sweep of the index finds them once it has drained."}),
		sweeps: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "index_sweeps_total",
			Help: "Sweeps of the open-jobs index for the finished jobs the full prune queue left out, by outcome: done, full (the queue filled again; another sweep follows), failed."},
			[]string{"outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, o := range []string{sweepDone, sweepFull, sweepFailed} {
		m.sweeps.WithLabelValues(o)
	}
	for _, c := range []prometheus.Collector{m.rebuildEntries, m.rebuildRunning, m.rebuildFinished, m.rebuildSeconds, m.pruned,
		m.pruneQueued, m.pruneLeftOut, m.sweeps} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering the running-jobs metrics: %w", err)
		}
	}
	return m, nil
}

// rebuilt records what a successful rebuild found.
func (m *metrics) rebuilt(entries, running, finished int, took time.Duration) {
	m.rebuildEntries.Set(float64(entries))
	m.rebuildRunning.Set(float64(running))
	m.rebuildFinished.Set(float64(finished))
	m.rebuildSeconds.Set(took.Seconds())
}
