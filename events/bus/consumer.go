package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/schema"
)

// Mode is how a consumer subscribes to its topic.
type Mode int

const (
	// Shared consumers form one consumer group on a named subscription,
	// made by setup (or --auto-create): each event reaches one replica.
	Shared Mode = iota
	// PerReplica consumers each create a subscription of their own at
	// start, so that every replica receives every event. It is deleted at
	// a clean stop and expires a day after an unclean one.
	PerReplica
)

// ReasonNotAnEvent is the dead-letter reason of a message on the events
// topic whose payload is not an event, or of the members of an array of
// events that are not events.
const ReasonNotAnEvent = "not_an_event"

// ConsumerConfig configures a Consumer.
type ConsumerConfig struct {
	// Name is the handler's stable identifier, in logs and dead-letter
	// metadata.
	Name string
	// Topic is the topic consumed: the events topic.
	Topic string
	// Mode is Shared or PerReplica.
	Mode Mode
	// Subscription is, with Shared, the consumer group's subscription and,
	// with PerReplica, the prefix of this replica's own: the prefix, the
	// host name and a random suffix, so that replicas and restarts never
	// share one.
	Subscription string
	// DeadLetterTopic receives messages that can never be handled.
	DeadLetterTopic string
	// Retry bounds the in-process retries of a transient failure.
	Retry RetryConfig
	// HandleTimeout bounds each handling of a message, all its events
	// together (default DefaultHandleTimeout): Handle's context ends
	// then, so a dependency that does not answer fails the attempt,
	// transiently, rather than holding the message and its place in the
	// subscription's flow control for ever.
	HandleTimeout time.Duration
	// PrepareTimeout bounds each attempt of Prepare (default
	// DefaultPrepareTimeout): one that has not returned by then is
	// cancelled and tried again, with a warning, as a transient failure.
	PrepareTimeout time.Duration
	// EventWorkers bounds the events of one message handled at once
	// (default DefaultEventWorkers): each of at most this many workers
	// takes the message's next event until none is left. A handler that
	// waits on a batched write of its own (the history sink waits for the
	// BigQuery append that carries its row) needs the events of a message
	// handled together, as separate messages would be. One that applies
	// events in memory under one lock (the running-jobs projection) gains
	// nothing from more than a few, and pays for each in a goroutine, its
	// stack's growth and lock handoffs. Messages are handled concurrently
	// either way.
	EventWorkers int
}

// The consumer's default bounds. A message's handling is given as long as
// the appender gives a write, so that with the policy's retries a message
// is answered within its acknowledgement deadline (RetryConfig.MaxElapsed).
// A rebuild reads about 20,000 running jobs a second on a 2-core machine:
// five minutes are millions of jobs, and a log that does not answer is
// reported within them instead of never.
const (
	DefaultHandleTimeout  = 10 * time.Second
	DefaultPrepareTimeout = 5 * time.Minute
	DefaultEventWorkers   = 32
)

// Validate reports every problem with c at once.
func (c ConsumerConfig) Validate() error {
	var errs []error
	for name, v := range map[string]string{"name": c.Name, "topic": c.Topic, "subscription": c.Subscription} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is not set", name))
		}
	}
	if c.Mode != Shared && c.Mode != PerReplica {
		errs = append(errs, fmt.Errorf("unknown subscription mode %d", c.Mode))
	}
	return errors.Join(errs...)
}

// ConsumerDeps are a consumer's collaborators: how it reaches Pub/Sub and
// what it feeds.
type ConsumerDeps struct {
	PubSub PubSub
	// Publisher publishes dead letters.
	Publisher message.Publisher
	Logger    *slog.Logger
	// Handle applies one event. It is called concurrently, at least once per
	// event and in any order. An error matching events.ErrInvalid, a
	// PermanentError or a panic dead-letters the event's message; any other
	// error is transient (see Policy).
	Handle func(ctx context.Context, e events.Event) error
	// Prepare, if set, runs once the subscription exists, while the router
	// subscribes (for a projection: its rebuild from the log; what is
	// appended meanwhile waits in the subscription). It is retried with backoff
	// while it fails with an error matching events.ErrUnavailable or runs
	// past PrepareTimeout; any other error stops the consumer.
	Prepare func(ctx context.Context) error
	// Ready, if set, is called once Prepare succeeded and the router has
	// subscribed.
	Ready func()
	// Echo, if set, follows the events this process's appender publishes
	// until this consumer receives them back, and counts those it has not
	// in Lag (see Echo). Only for a PerReplica consumer, which receives
	// every event.
	Echo *Echo
	// Registerer, if set, receives the consumer's Lag metrics.
	Registerer prometheus.Registerer
}

func (d ConsumerDeps) validate() error {
	var errs []error
	if d.PubSub.Client == nil {
		errs = append(errs, errors.New("no Pub/Sub client"))
	}
	if d.Handle == nil {
		errs = append(errs, errors.New("no handler"))
	}
	return errors.Join(errs...)
}

// Consumer feeds a projection from a topic: its subscription, its router and
// the Policy, given by one constructor. Its lifecycle is: subscribe (with
// PerReplica, create the subscription first), wait until the router runs,
// prepare, then ready; Close stops it and, with PerReplica, deletes the
// subscription.
type Consumer struct {
	cfg    ConsumerConfig
	deps   ConsumerDeps
	sub    string
	router *Router
	lag    *Lag
}

// NewConsumer assembles a consumer; it creates nothing in Pub/Sub until Run.
func NewConsumer(cfg ConsumerConfig, d ConsumerDeps) (*Consumer, error) {
	policy := Policy{Name: cfg.Name, DeadLetterTopic: cfg.DeadLetterTopic, Publisher: d.Publisher, Retry: cfg.Retry, Logger: d.Logger}
	if err := errors.Join(cfg.Validate(), d.validate(), policy.Validate()); err != nil {
		return nil, fmt.Errorf("configuring consumer %s: %w", cfg.Name, err)
	}
	lag, err := NewLag(cfg.Name, d.Registerer)
	if err != nil {
		return nil, err
	}
	if d.Echo != nil && cfg.Mode != PerReplica {
		return nil, fmt.Errorf("configuring consumer %s: an echo needs a subscription of this replica's own", cfg.Name)
	}
	lag.echo = d.Echo
	policy.Lag = lag
	if cfg.HandleTimeout <= 0 {
		cfg.HandleTimeout = DefaultHandleTimeout
	}
	if cfg.PrepareTimeout <= 0 {
		cfg.PrepareTimeout = DefaultPrepareTimeout
	}
	if cfg.EventWorkers <= 0 {
		cfg.EventWorkers = DefaultEventWorkers
	}
	c := &Consumer{cfg: cfg, deps: d, sub: cfg.Subscription, lag: lag}
	if cfg.Mode == PerReplica {
		c.sub = replicaName(cfg.Subscription)
	}
	h, err := policy.Wrap(c.handle)
	if err != nil {
		return nil, err
	}
	sub, err := d.PubSub.Subscriber(c.sub, d.Logger)
	if err != nil {
		return nil, err
	}
	if c.router, err = NewRouter(cfg.Name, cfg.Topic, sub, h, d.Logger); err != nil {
		return nil, errors.Join(err, sub.Close())
	}
	return c, nil
}

// Lag is how far the consumer is behind its topic.
func (c *Consumer) Lag() *Lag { return c.lag }

// Subscription is the name of the subscription the consumer pulls from.
func (c *Consumer) Subscription() string { return c.sub }

// handle decodes a message of the events topic and applies its events,
// up to EventWorkers at once (Handle is called in any order). Every event
// is handled even when one fails: if any failed transiently, the message
// is handed back (and every event of it handled again, which the
// projections fold away); otherwise, if any member of it could not be read
// as an event, or any event failed for good or panicked, those members
// are dead-lettered, in one message, and the others were applied. The dead
// letter's reason is the first such failure's, a member that could not be
// read counting first (ReasonNotAnEvent). A message none of which can be
// read is dead-lettered whole.
func (c *Consumer) handle(msg *message.Message) ([]*message.Message, error) {
	c.deps.Echo.received(msg.Metadata.Get(events.AttrEventID))
	evs, unreadable, err := events.SplitMessages(msg.Payload)
	if err == nil && len(evs) == 0 {
		err = errors.Join(unreadableErrs(unreadable)...)
	}
	if err != nil {
		return nil, Permanent(ReasonNotAnEvent, fmt.Errorf("message %s: %w", msg.UUID, err))
	}
	for i := range evs {
		c.deps.Echo.received(evs[i].ID)
	}
	ctx, cancel := context.WithTimeout(msg.Context(), c.cfg.HandleTimeout)
	defer cancel()
	if len(evs) == 1 && len(unreadable) == 0 {
		if err := c.deps.Handle(ctx, evs[0]); err != nil {
			return nil, fmt.Errorf("handling event %s: %w", evs[0].ID, err)
		}
		return nil, nil
	}
	errs := make([]error, len(evs))
	var next atomic.Int64 // the index of the next event a worker takes
	work := func() {
		for i := next.Add(1) - 1; i < int64(len(evs)); i = next.Add(1) - 1 {
			errs[i] = c.handleOne(ctx, &evs[i])
		}
	}
	var wg sync.WaitGroup
	for range min(len(evs), c.cfg.EventWorkers) - 1 {
		wg.Go(work)
	}
	work() // this goroutine is a worker too
	wg.Wait()
	var transient, failed []error
	var poisoned []events.Event
	for i, err := range errs {
		switch {
		case err == nil:
		case IsPermanent(err):
			failed = append(failed, err)
			poisoned = append(poisoned, evs[i])
		default:
			transient = append(transient, err)
		}
	}
	var permanent error
	switch {
	case len(unreadable) > 0:
		// The one dead letter's reason is not_an_event; its error names
		// the failures of the events beside the unreadable members too.
		permanent = Permanent(ReasonNotAnEvent, errors.Join(append([]error{fmt.Errorf("message %s: %d of its %d members: %w",
			msg.UUID, len(unreadable), len(evs)+len(unreadable), errors.Join(unreadableErrs(unreadable)...))}, failed...)...))
	case len(failed) > 0:
		permanent = failed[0]
	}
	if len(transient) > 0 {
		return nil, fmt.Errorf("%d of the %d events of message %s: %w", len(transient), len(evs), msg.UUID, errors.Join(transient...))
	}
	if permanent != nil {
		keepOnly(msg, poisoned, unreadable)
	}
	return nil, permanent
}

func unreadableErrs(u []events.Unreadable) []error {
	errs := make([]error, len(u))
	for i := range u {
		errs[i] = u[i].Err
	}
	return errs
}

// handleOne applies one event of a message of several, on a worker of
// handle. A panic is returned as the event's error, so that the message's
// other events are still handled and only this one is dead-lettered.
func (c *Consumer) handleOne(ctx context.Context, e *events.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = middleware.RecoveredPanicError{V: r, Stacktrace: string(debug.Stack())}
		}
	}()
	if err := c.deps.Handle(ctx, *e); err != nil {
		return fmt.Errorf("handling event %s: %w", e.ID, err)
	}
	return nil
}

// keepOnly makes msg carry only evs, the events of it that failed for good,
// and the members of it that could not be read, so that the dead-letter
// topic receives those and not the ones applied: the policy's poison queue
// publishes the message it is handed. If it cannot publish it, Pub/Sub
// redelivers the original message.
func keepOnly(msg *message.Message, evs []events.Event, unreadable []events.Unreadable) {
	payloads := make([][]byte, 0, len(evs)+len(unreadable))
	for i := range unreadable {
		payloads = append(payloads, unreadable[i].Raw)
	}
	for i := range evs {
		p, err := events.EncodeMessage(&evs[i])
		if err != nil {
			return // cannot happen for a decoded event; keep the whole message
		}
		payloads = append(payloads, p)
	}
	for _, k := range []string{events.AttrEventID, events.AttrKind, events.AttrJob, events.AttrState, events.AttrEvents} {
		delete(msg.Metadata, k)
	}
	var attrs map[string]string
	if len(unreadable) == 0 {
		msg.Payload, attrs = events.MessageOf(evs, payloads)
	} else if len(payloads) == 1 {
		msg.Payload = payloads[0] // one member that is not an event: as it came
	} else {
		msg.Payload = events.JoinMessages(payloads)
		attrs = map[string]string{events.AttrEvents: strconv.Itoa(len(payloads))}
	}
	for k, v := range attrs {
		msg.Metadata.Set(k, v)
	}
}

// prepareOnce runs Prepare within PrepareTimeout. An attempt cut short by
// that bound is transient, whatever it returned.
func (c *Consumer) prepareOnce(ctx context.Context) error {
	actx, cancel := context.WithTimeout(ctx, c.cfg.PrepareTimeout)
	defer cancel()
	err := c.deps.Prepare(actx)
	if err != nil && ctx.Err() == nil && actx.Err() != nil && !errors.Is(err, events.ErrUnavailable) {
		err = fmt.Errorf("%w: not done within %s: %w", events.ErrUnavailable, c.cfg.PrepareTimeout, err)
	}
	return err
}

// Run subscribes, prepares and feeds the projection until ctx ends. It
// returns an error if the router could not start or stopped on its own, or
// if Prepare failed with an error that is not transient. When ctx ends
// during Prepare, the consumer never becomes ready; when it ends before
// the subscription exists, Run returns nil, as a stop is not a failure.
func (c *Consumer) Run(ctx context.Context) error {
	if c.cfg.Mode == PerReplica {
		if err := c.replica().Create(ctx, c.deps.PubSub.Client); err != nil {
			if ctx.Err() != nil {
				return nil // stopped before it started
			}
			return fmt.Errorf("starting consumer %s: %w", c.cfg.Name, err)
		}
		c.deps.Echo.arm() // from now on, what is published reaches the subscription
	}
	errc := make(chan error, 1)
	go func() { errc <- c.router.Run(ctx) }()
	// The subscription exists (this replica's was just created, a group's
	// by setup), so every event published from now on waits in it whether
	// or not the router has opened its streams yet: Prepare runs while the
	// router subscribes, and a restart's rebuild does not wait for it.
	start := time.Now()
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	prepared := make(chan error, 1)
	go func() { prepared <- c.prepare(pctx) }()
	running := c.router.Running()
	for running != nil || prepared != nil {
		select {
		case <-running:
			running = nil
		case err := <-prepared:
			prepared = nil
			if err != nil {
				return err // Close stops the router
			}
		case err := <-errc:
			cancel()
			if prepared != nil {
				<-prepared
			}
			switch {
			case err == nil:
				return nil // closed, before it started or since
			case running != nil:
				return fmt.Errorf("starting consumer %s: %w", c.cfg.Name, err)
			default:
				return fmt.Errorf("consumer %s: %w", c.cfg.Name, err)
			}
		}
	}
	if ctx.Err() == nil {
		c.ready(start)
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("consumer %s: %w", c.cfg.Name, err)
	}
	return nil
}

// prepare runs Prepare, with backoff while it fails transiently. It
// returns nil if ctx ends first.
func (c *Consumer) prepare(ctx context.Context) error {
	if c.deps.Prepare == nil {
		return nil
	}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := c.prepareOnce(ctx)
		if err != nil && !errors.Is(err, events.ErrUnavailable) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, wait time.Duration) {
		c.deps.Logger.Warn("preparing the projection failed; trying again", "handler", c.cfg.Name,
			"error", err.Error(), "in", wait.String())
	}))
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("preparing consumer %s: %w", c.cfg.Name, err)
	}
	return nil
}

// ready marks the consumer ready: Prepare, started at start, succeeded
// and the router has subscribed.
func (c *Consumer) ready(start time.Time) {
	if c.deps.Ready != nil {
		c.deps.Ready()
	}
	c.deps.Logger.Info("projection live", "handler", c.cfg.Name, "subscription", c.sub,
		"prepare", time.Since(start).String())
}

// Close stops the router and, with PerReplica, deletes the subscription,
// all within ctx. A subscription that cannot be deleted expires a day
// later.
func (c *Consumer) Close(ctx context.Context) error {
	err := c.router.Close(ctx)
	if c.cfg.Mode == PerReplica {
		err = errors.Join(err, c.replica().Delete(ctx, c.deps.PubSub.Client))
	}
	if err != nil {
		return fmt.Errorf("closing consumer %s: %w", c.cfg.Name, err)
	}
	return nil
}

func (c *Consumer) replica() schema.ReplicaSubscription {
	return schema.ReplicaSubscription{Project: c.deps.PubSub.Client.Project(), Topic: c.cfg.Topic, Subscription: c.sub}
}

// replicaName names this replica's subscription: the prefix, the host and
// a random suffix, so that replicas (and restarts) never share one.
func replicaName(prefix string) string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(host))
	if len(host) > 30 {
		host = host[:30]
	}
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + strings.Trim(host, "-") + "-" + hex.EncodeToString(b)
}
