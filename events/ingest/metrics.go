package ingest

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the pipeline's Prometheus collectors. Label values are stable
// identifiers: intake (pull, push), event kinds, skip and error reasons.
type metrics struct {
	received     *prometheus.CounterVec
	decoded      *prometheus.CounterVec
	skipped      *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	redelivered  *prometheus.CounterVec
	handler      *prometheus.HistogramVec
	pushRefused  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "bqobserver", "ingest"
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "received_total",
			Help: "Audit-log entries received, by intake (pull, push). Redeliveries count again."}, []string{"intake"}),
		decoded: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "decoded_events_total",
			Help: "Job events decoded from audit-log entries and appended, by event kind."}, []string{"kind"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "skipped_total",
			Help: "Well-formed entries that carry no job event, by reason."}, []string{"reason"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dead_lettered_total",
			Help: "Entries published to the dead-letter topic, by reason."}, []string{"reason"}),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "handed_back_total",
			Help: "Entries handed back to Pub/Sub for redelivery after a transient failure, by intake."}, []string{"intake"}),
		handler: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "handler_seconds",
			Help:    "Time to handle one entry, retries included, by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"outcome"}),
		pushRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "push_refused_total",
			Help: "Push requests refused before their entry was handled, by HTTP status (401, 403 and 415 in front of the intake; 405, 408, 413 and 429 by it)."}, []string{"status"}),
	}
	for _, c := range []prometheus.Collector{m.received, m.decoded, m.skipped, m.deadLettered, m.redelivered, m.handler, m.pushRefused} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering ingest metrics: %w", err)
		}
	}
	return m, nil
}

// observe records the outcome of one delivery, once, however many retries
// it took.
func (m *metrics) observe(intake string, o *outcome, err error, d time.Duration) {
	m.received.WithLabelValues(intake).Inc()
	label := o.label(err)
	switch label {
	case outcomeSkipped:
		m.skipped.WithLabelValues(o.skip).Inc()
	case outcomeAppended:
		for _, k := range o.kinds {
			m.decoded.WithLabelValues(string(k)).Inc()
		}
	case outcomeDeadLettered:
		m.deadLettered.WithLabelValues(o.reason).Inc()
	case outcomeHandedBack:
		m.redelivered.WithLabelValues(intake).Inc()
	}
	m.handler.WithLabelValues(label).Observe(d.Seconds())
}
