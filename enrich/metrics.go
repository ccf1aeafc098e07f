package enrich

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are enrichment's Prometheus collectors. Projects are label
// values: there are as many series as projects that lost audit entries.
type metrics struct {
	reconciled     *prometheus.CounterVec
	discovered     *prometheus.CounterVec
	progress       prometheus.Counter
	appendFailures prometheus.Counter
	skipped        prometheus.Counter
	swept          prometheus.Counter
	cutOff         prometheus.Counter
	pollSeconds    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "bqobserver", "enrich"
	m := &metrics{
		reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "reconciled_jobs_total",
			Help: "Open jobs closed by enrichment because their completion entry did not arrive, by project and reason (done, not_found)."},
			[]string{"project", "reason"}),
		discovered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "discovered_jobs_total",
			Help: "Pending or running jobs the jobs API listed and the event log did not know, appended by enrichment, by project."},
			[]string{"project"}),
		progress: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "progress_events_total",
			Help: "Progress events appended: jobs whose numbers changed since the log last knew them."}),
		appendFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "append_failures_total",
			Help: "Polls whose events could not be appended; they are observed again at the next poll."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "busy_skips_total",
			Help: "Polls not started because the project's previous poll was still running."}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "swept_projects_total",
			Help: "Polls of projects without open jobs, made by the sweep."}),
		cutOff: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "polls_cut_off_total",
			Help: "Polls whose calls reached their deadline, a margin before their lease's hold ends, before they asked about every job; what they decided is appended, and the jobs left are asked about first at the next poll."}),
		pollSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "poll_seconds",
			Help:    "Time to poll one project: its listing, its checks and the append.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
	}
	for _, c := range []prometheus.Collector{m.reconciled, m.discovered, m.progress, m.appendFailures, m.skipped, m.swept, m.cutOff, m.pollSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering enrichment metrics: %w", err)
		}
	}
	return m, nil
}

// count adds what one appended poll did.
func (m *metrics) count(project string, b *batch) {
	m.progress.Add(float64(b.progress))
	for reason, n := range b.reconciled {
		m.reconciled.WithLabelValues(project, reason).Add(float64(n))
	}
	if b.discovered > 0 {
		m.discovered.WithLabelValues(project).Add(float64(b.discovered))
	}
}
