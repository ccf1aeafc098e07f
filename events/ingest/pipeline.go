// Package ingest routes BigQuery audit-log entries from Pub/Sub into the
// event log: a Watermill router decodes each entry (events/auditlog),
// appends its job events to the log, and publishes the appended events on
// the events topic. A push intake runs the same handler for Pub/Sub push
// subscriptions.
//
// Delivery semantics. Pub/Sub delivers at least once and in any order; the
// log is idempotent, so a redelivered entry rewrites the same events. An
// entry is acknowledged only after its events are durable in the log and
// published on the events topic; a crash between the two steps leads to a
// redelivery, which appends nothing new and publishes the events again
// (subscribers of the events topic fold duplicates away). Failures are
// decided by kind:
//
//   - a well-formed entry that carries no job event (a dry run, a table
//     read, a rejected call) is skipped: counted by reason and acknowledged;
//   - a malformed entry, or one that makes the handler panic, is permanent:
//     it is published to the dead-letter topic with its original payload and
//     attributes and the reason (MetaReason, reason_poisoned), then
//     acknowledged;
//   - anything else (the log or Pub/Sub unavailable, a deadline) is
//     transient: retried in process with bounded exponential backoff and
//     jitter, then handed back to Pub/Sub (nack) for redelivery under the
//     subscription's retry policy. It is never dead-lettered by the
//     pipeline.
//
// Concurrent entries are appended in shared batches (group commit), so the
// log sees few large writes under load and a single small one when idle.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// Log is the event log as the pipeline uses it; *events.Log is one.
type Log = appender

// Deps are the pipeline's collaborators.
type Deps struct {
	// Log is the event log the pipeline appends to.
	Log Log
	// Subscriber delivers audit entries from the audit subscription. Nil
	// disables the pull intake (push only).
	Subscriber message.Subscriber
	// Publisher publishes to the events and dead-letter topics.
	Publisher message.Publisher
	// Registerer receives the pipeline's metrics.
	Registerer prometheus.Registerer
	// Logger receives the pipeline's and the router's logs.
	Logger *slog.Logger
	// CloseTimeout bounds how long Close waits for entries in flight.
	// Default 20s.
	CloseTimeout time.Duration
}

// Pipeline is the ingest pipeline. Run it with Run and stop it with Close.
type Pipeline struct {
	cfg     Config
	log     *slog.Logger
	pub     message.Publisher
	metrics *metrics
	batcher *batcher
	chain   message.HandlerFunc
	router  *message.Router // nil without a pull intake
	push    chan struct{}   // push requests in flight
	once    sync.Once
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
	p := &Pipeline{cfg: cfg, log: d.Logger, pub: d.Publisher, metrics: m, push: make(chan struct{}, cfg.PushMaxInFlight)}
	p.batcher = newBatcher(d.Log, cfg.AppendBatch, cfg.AppendWorkers, cfg.AppendTimeout, m)
	if p.chain, err = p.buildChain(); err != nil {
		p.batcher.Close()
		return nil, err
	}
	if d.Subscriber != nil {
		if err := p.addRouter(d); err != nil {
			p.batcher.Close()
			return nil, err
		}
	}
	return p, nil
}

func (d *Deps) validate() error {
	var errs []error
	if d.Log == nil {
		errs = append(errs, errors.New("no event log"))
	}
	if d.Publisher == nil {
		errs = append(errs, errors.New("no publisher"))
	}
	if d.Registerer == nil {
		errs = append(errs, errors.New("no metrics registerer"))
	}
	if d.Logger == nil {
		errs = append(errs, errors.New("no logger"))
	}
	return errors.Join(errs...)
}

// buildChain wraps the handler in its middleware, outermost first:
// observe, poison queue (permanent errors only), classify, retry
// (transient errors only), recoverer. The router and the push intake run
// the same chain.
func (p *Pipeline) buildChain() (message.HandlerFunc, error) {
	poison, err := middleware.PoisonQueueWithFilter(p.pub, p.cfg.DeadLetterTopic, isPermanent)
	if err != nil {
		return nil, fmt.Errorf("building the poison queue: %w", err)
	}
	r := p.cfg.Retry
	retry := middleware.Retry{
		MaxRetries:          r.MaxRetries,
		InitialInterval:     r.InitialInterval,
		MaxInterval:         r.MaxInterval,
		Multiplier:          r.Multiplier,
		RandomizationFactor: r.Jitter,
		MaxElapsedTime:      r.MaxElapsed,
		ShouldRetry:         func(rp middleware.RetryParams) bool { return !isPermanent(rp.Err) },
	}
	h := middleware.Recoverer(p.handle)
	h = retry.Middleware(h)
	h = p.classify(h)
	h = poison(h)
	return p.observe(h), nil
}

func (p *Pipeline) addRouter(d Deps) error {
	timeout := d.CloseTimeout
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: timeout}, watermill.NewSlogLogger(d.Logger))
	if err != nil {
		return fmt.Errorf("creating the router: %w", err)
	}
	r.AddHandler(p.cfg.HandlerName, p.cfg.AuditTopic, d.Subscriber, p.cfg.EventsTopic, sharedPublisher{p.pub}, p.chain)
	p.router = r
	return nil
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
		return fmt.Errorf("running the ingest router: %w", err)
	}
	return nil
}

// Running is closed once the pull intake is subscribed (at once without one).
func (p *Pipeline) Running() <-chan struct{} {
	if p.router == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.router.Running()
}

// Close stops the pull intake, waits (within the close timeout) for the
// entries in flight, then stops the log writer. Stop the push intake's HTTP
// server before calling it. It is idempotent.
func (p *Pipeline) Close() error {
	var err error
	p.once.Do(func() {
		if p.router != nil {
			err = p.router.Close()
		}
		p.batcher.Close()
	})
	if err != nil {
		return fmt.Errorf("closing the ingest router: %w", err)
	}
	return nil
}
