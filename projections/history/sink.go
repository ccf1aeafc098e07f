package history

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/schema"
)

// ReasonRowRejected is the dead-letter reason of an event whose job's row
// BigQuery refuses for good.
const ReasonRowRejected = "row_rejected"

// Log is the event log as the sink reads it; *events.Log is one.
type Log interface {
	JobEvents(ctx context.Context, key events.JobKey) ([]events.Event, error)
	JobDone(ctx context.Context, key events.JobKey) (bool, error)
	ReadJobs(ctx context.Context, keys []events.JobKey, fn func(events.JobKey, []events.Event) error) error
	Range(ctx context.Context, from, to time.Time, fn func(events.Event) error) error
}

var _ Log = (*events.Log)(nil)

// Config configures a Sink. Its zero value is the default.
type Config struct {
	Writer WriterConfig
	// Prices give estimated_cost_usd; the zero value means the checked-in
	// table, schema.OnDemandPrices.
	Prices schema.Prices
	// Now is the clock of version_time; default time.Now.
	Now func() time.Time
}

// Sink writes the job history: for an event, the current version of its
// job, folded from the log, as one row of job_versions (see the package
// documentation for when and with what guarantees).
type Sink struct {
	log     Log
	v       *versioner
	w       *writer
	metrics *metrics
}

// New returns a sink that reads log and writes to dest. Its metrics are
// registered on reg. Close it to flush.
func New(cfg Config, log Log, dest Destination, reg prometheus.Registerer) (*Sink, error) {
	if dest.Client == nil {
		return nil, errors.New("configuring the history sink: no Storage Write API client")
	}
	if err := dest.BigQuery.Validate(); err != nil {
		return nil, fmt.Errorf("configuring the history sink: %w", err)
	}
	return newSink(cfg, log, dest.opener(), reg)
}

func newSink(cfg Config, log Log, open opener, reg prometheus.Registerer) (*Sink, error) {
	errs := []error{cfg.Writer.Validate()}
	if log == nil || reg == nil {
		errs = append(errs, errors.New("the event log and the metrics registerer are both needed"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuring the history sink: %w", err)
	}
	v, err := newVersioner(cfg)
	if err != nil {
		return nil, fmt.Errorf("configuring the history sink: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Sink{log: log, v: v, w: newWriter(cfg.Writer, v.rows.proto, open, m), metrics: m}, nil
}

// Handle writes the current version of e's job, unless e is a progress
// sample of a job that has not finished: the consumer's handler. Its
// errors are what the consumer's policy decides by: a row BigQuery refuses
// is a bus.PermanentError with ReasonRowRejected (dead-lettered), an invalid
// event matches events.ErrInvalid, anything else is transient (retried, then
// handed back to Pub/Sub).
func (s *Sink) Handle(ctx context.Context, e events.Event) error {
	wrote, err := s.handle(ctx, e)
	s.metrics.rows.WithLabelValues(outcome(err, wrote)).Inc()
	if errors.Is(err, errRowRejected) {
		return bus.Permanent(ReasonRowRejected, err)
	}
	return err
}

func (s *Sink) handle(ctx context.Context, e events.Event) (bool, error) {
	if e.Kind == events.KindProgress && e.State != events.StateDone {
		// A running job's samples make no row: asked whether the job is
		// done, the log sends at most a cell, where reading its events
		// for every sample would cost a long job the square of its events.
		done, err := s.log.JobDone(ctx, e.Job)
		if err != nil {
			return false, fmt.Errorf("reading whether job %s is done: %w", e.Job, err)
		}
		if !done {
			return false, nil
		}
	}
	evs, err := s.log.JobEvents(ctx, e.Job)
	if err != nil {
		return false, fmt.Errorf("reading the events of job %s: %w", e.Job, err)
	}
	evs = withEvent(evs, e)
	j, d := s.v.version(e.Job, evs)
	if e.Kind == events.KindProgress && !j.Done() {
		return false, nil
	}
	if err := s.write(ctx, &j, &d); err != nil {
		return false, err
	}
	return true, nil
}

// withEvent returns evs with e among them: the log has e, since it is
// published only once appended, but a version must never miss the event
// that caused it.
func withEvent(evs []events.Event, e events.Event) []events.Event {
	for i := range evs {
		if evs[i].ID == e.ID {
			return evs
		}
	}
	return append(evs, e)
}

// write appends a version of a job.
func (s *Sink) write(ctx context.Context, j *events.Job, d *Derived) error {
	row, err := s.v.rows.encode(j, d)
	if err == nil {
		err = s.w.write(ctx, row)
	}
	if err != nil {
		return fmt.Errorf("writing the version of job %s: %w", j.Key, err)
	}
	return nil
}

// Close writes the rows in flight, waiting for them until ctx ends; writes
// after it fail transiently. It is idempotent.
func (s *Sink) Close(ctx context.Context) error { return s.w.close(ctx) }
