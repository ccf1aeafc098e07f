package bus

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/events"
)

// plausibility applies the plausibility rule (events.Event.DropImplausible)
// to every event appended, whichever writer it comes from.
type plausibility struct {
	now     func() time.Time
	logger  *slog.Logger
	dropped *prometheus.CounterVec
}

func newPlausibility(logger *slog.Logger, reg prometheus.Registerer) (*plausibility, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &plausibility{now: time.Now, logger: logger, dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "bqobserver", Subsystem: "appender", Name: "dropped_values_total",
		Help: "Implausible values the appender dropped from events it appended (the events were kept), by field and reason. The audit-log decoder drops those of audit entries before (bqobserver_ingest_dropped_values_total).",
	}, []string{"field", "reason"})}
	if err := reg.Register(p.dropped); err != nil {
		return nil, fmt.Errorf("registering the appender's metrics: %w", err)
	}
	return p, nil
}

// apply drops the implausible facts of evs, in place, counting and logging
// them, and refuses, as invalid, events whose own time is implausible.
func (p *plausibility) apply(evs []events.Event) error {
	now := p.now()
	for i := range evs {
		e := &evs[i]
		if reason := events.ImplausibleTime(e.Time, now); reason != "" && !e.Time.IsZero() {
			return fmt.Errorf("appending: %w: event %s: time %s is implausible (%s)", events.ErrInvalid, e.ID, e.Time.Format(time.RFC3339Nano), reason)
		}
		dropped := e.DropImplausible()
		for _, d := range dropped {
			p.dropped.WithLabelValues(d.Field, d.Reason).Inc()
		}
		if len(dropped) > 0 {
			p.logger.Warn("implausible values dropped from an event; the event was kept", "event_id", e.ID,
				"job", e.Job.String(), "source", e.Source.Format, "dropped", fmt.Sprint(dropped))
		}
	}
	return nil
}
