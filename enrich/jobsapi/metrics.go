package jobsapi

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics count the client's attempts. Label values are stable
// identifiers: the method (jobs.list, jobs.get) and the outcome (ok,
// denied, not_found, rate_limited, unavailable, error).
type metrics struct {
	attempts *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "bqobserver", "enrich"
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "api_calls_total",
			Help: "Calls to the BigQuery jobs API (every attempt, retries included), by method and outcome."}, []string{"method", "outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "api_call_seconds",
			Help:    "Time of one call to the BigQuery jobs API, rate-limit wait excluded, by method.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"method"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.attempts, m.seconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering the jobs API metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(method string, k kind, d time.Duration) {
	m.attempts.WithLabelValues(method, k.outcome()).Inc()
	m.seconds.WithLabelValues(method).Observe(d.Seconds())
}
