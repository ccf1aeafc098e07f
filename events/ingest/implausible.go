package ingest

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/events"
)

// implausibleMetric counts the values the plausibility rule dropped from
// decoded entries (events.Event.DropImplausible).
type implausibleMetric struct {
	dropped *prometheus.CounterVec
}

func newImplausibleMetric(reg prometheus.Registerer) (*implausibleMetric, error) {
	m := &implausibleMetric{dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "bqobserver", Subsystem: "ingest", Name: "dropped_values_total",
		Help: "Implausible values dropped from appended entries (the entries were kept), by field and reason (negative, too_large, too_early, in_the_future).",
	}, []string{"field", "reason"})}
	if err := reg.Register(m.dropped); err != nil {
		return nil, fmt.Errorf("registering ingest metrics: %w", err)
	}
	return m, nil
}

// report counts and logs, once per delivery that was appended, the values
// dropped from its entry.
func (m *implausibleMetric) report(log *slog.Logger, o *outcome, id string, err error) {
	if len(o.dropped) == 0 || o.label(err) != outcomeAppended {
		return
	}
	for _, d := range o.dropped {
		m.dropped.WithLabelValues(d.Field, d.Reason).Inc()
	}
	log.Warn("implausible values dropped from an audit entry; the entry was kept", "message_id", id,
		"dropped", droppedAttr(o.dropped))
}

// droppedAttr lists drops for a log record.
func droppedAttr(ds []events.Dropped) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}
