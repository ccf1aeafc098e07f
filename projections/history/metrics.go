package history

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the history sink's Prometheus collectors.
type metrics struct {
	rows       *prometheus.CounterVec
	appendTime *prometheus.HistogramVec
	batchSize  prometheus.Histogram
}

// The outcomes of an event the sink handles, as the rows metric counts them.
const (
	outcomeWritten  = "written"  // its job's version is in BigQuery
	outcomeSkipped  = "skipped"  // a progress sample of a running job: no row
	outcomeRejected = "rejected" // BigQuery refuses the row: dead-lettered
	outcomeFailed   = "failed"   // transient: handed back for a retry
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "bqobserver", "history"
	m := &metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_total",
			Help: "Events the history sink handled, by outcome: written (a row appended), skipped (a progress sample of a running job), rejected (dead-lettered), failed (handed back)."},
			[]string{"outcome"}),
		appendTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "append_seconds",
			Help:    "Time of one append to BigQuery's Storage Write API, by result (ok, error).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"result"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "append_batch_rows",
			Help: "Rows per append to BigQuery.", Buckets: prometheus.ExponentialBuckets(1, 2, 11)}),
	}
	for _, c := range []prometheus.Collector{m.rows, m.appendTime, m.batchSize} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering the history sink's metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observeAppend(d time.Duration, n int, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.appendTime.WithLabelValues(result).Observe(d.Seconds())
	m.batchSize.Observe(float64(n))
}

// outcome names what became of an event whose handling returned err.
func outcome(err error, wrote bool) string {
	switch {
	case errors.Is(err, errRowRejected):
		return outcomeRejected
	case err != nil:
		return outcomeFailed
	case wrote:
		return outcomeWritten
	}
	return outcomeSkipped
}
