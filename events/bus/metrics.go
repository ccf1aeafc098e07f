package bus

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/events"
)

// metrics are the appender's Prometheus collectors.
type metrics struct {
	appended   prometheus.Counter
	published  prometheus.Counter
	appendTime *prometheus.HistogramVec
	batchSize  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "bqobserver", "appender"
	m := &metrics{
		appended: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "appended_events_total",
			Help: "Events written to the event log (a rewrite of an existing event counts again)."}),
		published: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "published_events_total",
			Help: "Events published on the events topic (a republished event counts again)."}),
		appendTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "append_seconds",
			Help:    "Time of one batched write to the event log, by result (ok, invalid, unavailable).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"result"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "append_batch_events",
			Help: "Events per batched write to the event log.", Buckets: prometheus.ExponentialBuckets(1, 2, 11)}),
	}
	for _, c := range []prometheus.Collector{m.appended, m.published, m.appendTime, m.batchSize} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering the appender's metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observeAppend(d time.Duration, n int, err error) {
	result := "ok"
	switch {
	case errors.Is(err, events.ErrInvalid):
		result = "invalid"
	case err != nil:
		result = "unavailable"
	default:
		m.appended.Add(float64(n))
	}
	m.appendTime.WithLabelValues(result).Observe(d.Seconds())
	m.batchSize.Observe(float64(n))
}
