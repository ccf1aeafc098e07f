// Package ingest routes BigQuery audit-log entries from Pub/Sub into the
// event log: a Watermill router decodes each entry (events/auditlog) and
// appends its job events through the appender (events/bus), which writes
// them to the log and publishes them on the events topic. A push intake runs
// the same handler chain for Pub/Sub push subscriptions.
//
// Delivery semantics. Pub/Sub delivers at least once and in any order; the
// log is idempotent, so a redelivered entry rewrites the same events. An
// entry is acknowledged only after the appender accepted its events (see
// bus.Appender for what that means on a duplicate, a lost acknowledgement
// or a crash between the log and the topic). Failures are decided by kind,
// under the product's one bus.Policy:
//
//   - a well-formed entry that carries no job event (a dry run, a table
//     read, a rejected call) is skipped: counted by reason and acknowledged;
//   - a malformed entry, or one that makes the handler panic, is permanent:
//     it is published to the dead-letter topic with its original payload and
//     attributes and the reason (bus.MetaReason: a decoder reason such as
//     bad_json, not_audit_entry, unknown_payload, no_job_id, no_time,
//     bad_field, bad_envelope or body_too_large, or invalid_event, or
//     panic), then
//     acknowledged;
//   - anything else (the log or Pub/Sub unavailable, a deadline) is
//     transient: retried in process, then handed back to Pub/Sub (nack) for
//     redelivery under the subscription's retry policy. It is never
//     dead-lettered by the pipeline.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/events/auditlog"
	"github.com/bqobserver/bqobserver/events/bus"
)

// Deps are the pipeline's collaborators.
type Deps struct {
	// Appender appends the decoded events to the log and publishes them.
	Appender *bus.Appender
	// Subscriber delivers audit entries from the audit subscription. Nil
	// disables the pull intake (push only).
	Subscriber message.Subscriber
	// Publisher publishes to the dead-letter topic.
	Publisher message.Publisher
	// Registerer receives the pipeline's metrics.
	Registerer prometheus.Registerer
	// Logger receives the pipeline's and the router's logs.
	Logger *slog.Logger
}

// Pipeline is the ingest pipeline. Run it with Run and stop it with Close.
type Pipeline struct {
	cfg      Config
	log      *slog.Logger
	pub      message.Publisher
	appender *bus.Appender
	metrics  *metrics
	// implausible counts the values the decoder dropped.
	implausible *implausibleMetric
	chain       message.HandlerFunc
	router      *bus.Router   // nil without a pull intake
	push        chan struct{} // push requests in flight
	budget      *pushBudget   // push bytes in flight
	lag         *bus.Lag
	decoders    *decoders
}

// New assembles the pipeline. It creates nothing in Pub/Sub or Bigtable:
// topics, subscriptions and the table are made by setup.
func New(cfg Config, d Deps) (*Pipeline, error) {
	cfg.setDefaults()
	if err := errors.Join(cfg.Validate(), d.validate()); err != nil {
		return nil, fmt.Errorf("configuring ingest: %w", err)
	}
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	lag, err := bus.NewLag(cfg.HandlerName, d.Registerer)
	if err != nil {
		return nil, err
	}
	im, err := newImplausibleMetric(d.Registerer)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{cfg: cfg, log: d.Logger, pub: d.Publisher, appender: d.Appender, metrics: m, implausible: im,
		push: make(chan struct{}, cfg.PushMaxInFlight), budget: newPushBudget(cfg.PushMaxInFlightBytes), lag: lag}
	policy := bus.Policy{Name: cfg.HandlerName, DeadLetterTopic: cfg.DeadLetterTopic, Publisher: d.Publisher,
		Retry: cfg.Retry, Logger: d.Logger, Lag: lag}
	h, err := policy.Wrap(p.handle)
	if err != nil {
		return nil, err
	}
	p.chain = p.observe(h)
	if d.Subscriber != nil {
		if p.router, err = bus.NewRouter(cfg.HandlerName, cfg.AuditTopic, d.Subscriber, p.chain, d.Logger); err != nil {
			return nil, err
		}
	}
	p.decoders = startDecoders(auditlog.DecodeAt)
	return p, nil
}

func (d *Deps) validate() error {
	var errs []error
	if d.Appender == nil {
		errs = append(errs, errors.New("no appender"))
	}
	if d.Registerer == nil {
		errs = append(errs, errors.New("no metrics registerer"))
	}
	return errors.Join(errs...)
}

// Run runs the pull intake until ctx ends or Close is called. Entries in
// flight at that moment are handed back to Pub/Sub. Without a pull intake
// it waits for ctx.
func (p *Pipeline) Run(ctx context.Context) error {
	if p.router == nil {
		<-ctx.Done()
		return nil
	}
	if err := p.router.Run(ctx); err != nil {
		return fmt.Errorf("running the ingest pipeline: %w", err)
	}
	return nil
}

// Lag is how far the pipeline is behind the audit topic: the age of the
// oldest entry in hand, by its Pub/Sub publish time (see bus.Lag).
func (p *Pipeline) Lag() *bus.Lag { return p.lag }

// Running is closed once the pull intake is subscribed (at once without one).
func (p *Pipeline) Running() <-chan struct{} {
	if p.router == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.router.Running()
}

// Close stops the pull intake and waits, until ctx ends, for it to hand
// back the entries in flight. Stop the push intake's HTTP server before
// calling it, and close the appender after. It is idempotent.
func (p *Pipeline) Close(ctx context.Context) error {
	defer p.decoders.close()
	if p.router == nil {
		return nil
	}
	if err := p.router.Close(ctx); err != nil {
		return fmt.Errorf("closing the ingest pipeline: %w", err)
	}
	return nil
}
