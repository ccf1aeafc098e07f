package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/events"
)

// Log is the event log as the appender writes it; *events.Log is one.
type Log interface {
	Append(ctx context.Context, evs []events.Event) error
}

var _ Log = (*events.Log)(nil)

// AppenderConfig configures an Appender. The zero value of every field but
// Topic means its default.
type AppenderConfig struct {
	// Topic receives every appended event (events.MarshalMessage).
	Topic string
	// Batch is the most events one log write carries. Default 500.
	Batch int
	// MessageEvents is the most events one message on the topic carries:
	// the events of one log write go in as few messages as this allows
	// (events.JoinMessages), and a message of one event is in the
	// one-event form. Default 500. 1 publishes every event in a message of
	// its own, for subscribers that read only that form.
	MessageEvents int
	// Workers is how many log writes may be in flight at once. Default 4.
	Workers int
	// Timeout bounds one log write. Default 10s. The Bigtable client
	// retries a write internally until then.
	Timeout time.Duration
	// PublishMaxMessages and PublishMaxBytes bound the events waiting in
	// the Pub/Sub client to be published: past them, a publish fails at
	// once (and so does its append, transiently) rather than wait in
	// memory. Without the bound, a Pub/Sub that accepted connections but
	// no publishes let enrichment's events pile up in the client, and the
	// heap grow by 450 MB in 40 minutes. Defaults 20,000 and 64 MiB, far
	// above what 5,000 events a second keep in flight.
	PublishMaxMessages int
	PublishMaxBytes    int
	// Logger receives a warning for every event the plausibility rule
	// changed. Nil: no warnings (the metric still counts).
	Logger *slog.Logger
	// Echo, if set, hears of every event published, for this replica's
	// live feed to tell when they come back (see Echo).
	Echo *Echo
}

func (c *AppenderConfig) setDefaults() {
	if c.Batch == 0 {
		c.Batch = 500
	}
	if c.MessageEvents == 0 {
		c.MessageEvents = 500
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	setDuration(&c.Timeout, 10*time.Second)
	if c.PublishMaxMessages == 0 {
		c.PublishMaxMessages = 20_000
	}
	if c.PublishMaxBytes == 0 {
		c.PublishMaxBytes = 64 << 20
	}
}

// Validate reports every problem with c at once.
func (c AppenderConfig) Validate() error {
	var errs []error
	if c.Topic == "" {
		errs = append(errs, errors.New("events topic is not set"))
	}
	if c.Batch < 0 || c.MessageEvents < 0 || c.Workers < 0 || c.Timeout < 0 || c.PublishMaxMessages < 0 || c.PublishMaxBytes < 0 {
		errs = append(errs, errors.New("batch, message events, workers, timeout and publish bounds must not be negative"))
	}
	return errors.Join(errs...)
}

// errClosed is returned to appends that arrive after Close. It is
// transient: a Pub/Sub-driven writer hands its message back for another
// replica.
var errClosed = fmt.Errorf("the appender is closed: %w", events.ErrUnavailable)

// Appender is the one way events enter the product: every writer of events
// (ingest; enrichment, cancel requests and alerts alike) appends through it.
// Append validates the events, appends them to the event log in batches
// shared with concurrent appends (group commit), then publishes the batch on
// the events topic, in as few messages as MessageEvents allows, and returns
// nil only after both steps succeeded for every event of the batch.
//
// The acknowledgement rule: a writer acknowledges its input (a Pub/Sub
// message, a push request, a poll's progress) only after Append returned
// nil. Failure semantics:
//
//   - an event that fails validation is an error matching events.ErrInvalid,
//     and nothing of that Append is written or published;
//   - any other failure (the log or Pub/Sub unavailable, a deadline, the
//     appender closed) matches events.ErrUnavailable: the writer retries or
//     hands its input back, since some of the events may already be in the
//     log or on the topic;
//   - a duplicate (the same event appended again, by a redelivery or a
//     retry) rewrites identical cells in the log and is published again;
//     consumers fold duplicates away;
//   - a lost acknowledgement leads to the same redelivery, and so to a
//     duplicate;
//   - a crash between the two steps leaves events in the log that were not
//     published: the unacknowledged input is redelivered and publishes them,
//     and a projection rebuilt from the log sees them anyway.
type Appender struct {
	topic     string
	perMsg    int
	pub       *pubsub.Publisher
	batcher   *batcher
	metrics   *metrics
	plausible *plausibility
	echo      *Echo

	base   context.Context // ends when Close stops waiting for in-flight work
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
	once     sync.Once
	closeErr error
}

// NewAppender returns an appender that writes to log and publishes on
// cfg.Topic through client, which the caller keeps and closes after Close.
// Its metrics are registered on reg.
func NewAppender(cfg AppenderConfig, log Log, client *pubsub.Client, reg prometheus.Registerer) (*Appender, error) {
	cfg.setDefaults()
	errs := []error{cfg.Validate()}
	if log == nil || client == nil || reg == nil {
		errs = append(errs, errors.New("the event log, the Pub/Sub client and the metrics registerer are all needed"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuring the appender: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	pl, err := newPlausibility(cfg.Logger, reg)
	if err != nil {
		return nil, err
	}
	pub := client.Publisher(cfg.Topic)
	pub.PublishSettings.FlowControlSettings = pubsub.FlowControlSettings{
		MaxOutstandingMessages: cfg.PublishMaxMessages, MaxOutstandingBytes: cfg.PublishMaxBytes,
		LimitExceededBehavior: pubsub.FlowControlSignalError,
	}
	a := &Appender{topic: cfg.Topic, perMsg: cfg.MessageEvents, pub: pub, metrics: m, plausible: pl, echo: cfg.Echo}
	a.base, a.cancel = context.WithCancel(context.Background())
	a.batcher = newBatcher(a.base, log, a.publish, cfg, m)
	return a, nil
}

// Append appends evs to the log and publishes them on the events topic; see
// Appender for what its result means. It applies the plausibility rule to
// evs first (see events.Event.DropImplausible), in place: implausible facts
// are dropped, counted and logged, and an event whose own time is
// implausible makes the append fail as invalid.
func (a *Appender) Append(ctx context.Context, evs []events.Event) error {
	if err := a.plausible.apply(evs); err != nil {
		return err
	}
	payloads, err := payloadsOf(evs)
	if err != nil {
		return err
	}
	ctx, leave, err := a.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	if err := a.batcher.append(ctx, evs, payloads); err != nil {
		if a.base.Err() != nil && !errors.Is(err, events.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", errClosed, err) // Close gave up on it
		}
		return err
	}
	return nil
}

// payloadsOf validates evs and encodes each for the events topic.
func payloadsOf(evs []events.Event) ([][]byte, error) {
	payloads := make([][]byte, len(evs))
	for i := range evs {
		if err := evs[i].Validate(); err != nil {
			return nil, fmt.Errorf("appending: %w: %w", events.ErrInvalid, err)
		}
		payload, err := events.EncodeMessage(&evs[i])
		if err != nil {
			return nil, fmt.Errorf("appending: %w: %w", events.ErrInvalid, err)
		}
		payloads[i] = payload
	}
	return payloads, nil
}

// enter counts an append in flight, unless the appender is closed, and
// returns a context that also ends when Close gives up waiting.
func (a *Appender) enter(ctx context.Context) (context.Context, func(), error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, nil, errClosed
	}
	a.inflight.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(a.base, cancel)
	return ctx, func() { stop(); cancel(); a.inflight.Done() }, nil
}

// maxMessageBytes bounds the payload of a message of several events,
// well below Pub/Sub's 10 MB; a larger event goes in a message of its own.
const maxMessageBytes = 4 << 20

// publish publishes a written batch's events (payloads from payloadsOf) in
// messages of at most perMsg events and maxMessageBytes, then waits for
// them all.
func (a *Appender) publish(ctx context.Context, evs []events.Event, payloads [][]byte) error {
	ids := make([]string, len(evs))
	for i := range evs {
		ids[i] = evs[i].ID
	}
	a.echo.publishing(ids)
	type sent struct {
		from, to int // the events it carries: evs[from:to]
		result   *pubsub.PublishResult
	}
	var msgs []sent
	for from := 0; from < len(evs); {
		to, size := from+1, len(payloads[from])
		for to < len(evs) && to-from < a.perMsg && size+1+len(payloads[to]) <= maxMessageBytes {
			size += 1 + len(payloads[to])
			to++
		}
		data, attrs := events.MessageOf(evs[from:to], payloads[from:to])
		msgs = append(msgs, sent{from: from, to: to, result: a.pub.Publish(ctx, &pubsub.Message{Data: data, Attributes: attrs})})
		from = to
	}
	var errs []error
	var failed []string
	published := 0
	for _, m := range msgs {
		if _, err := m.result.Get(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%d events from %s: %w", m.to-m.from, ids[m.from], err))
			failed = append(failed, ids[m.from:m.to]...)
			continue
		}
		published += m.to - m.from
	}
	a.echo.failed(failed)
	a.metrics.published.Add(float64(published))
	if len(errs) > 0 {
		return fmt.Errorf("publishing on %s: %w: %w", a.topic, events.ErrUnavailable, errors.Join(errs...))
	}
	return nil
}

// Close stops intake (later appends fail with a transient error) and waits
// for the appends in flight and the log writes and publishes they started,
// until ctx ends; then it cancels what is still in flight. It returns ctx's
// error if it had to cancel anything. It is idempotent.
func (a *Appender) Close(ctx context.Context) error {
	a.once.Do(func() {
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		err := waitFor(ctx, a.inflight.Wait)
		a.batcher.close()
		err = errors.Join(err, waitFor(ctx, a.batcher.wait))
		if err != nil {
			a.cancel() // the appends and writes still in flight end now
			a.inflight.Wait()
			a.batcher.wait()
		}
		err = errors.Join(err, waitFor(ctx, a.pub.Stop))
		a.cancel()
		if err != nil {
			a.closeErr = fmt.Errorf("closing the appender: %w", err)
		}
	})
	return a.closeErr
}

// waitFor runs wait until it returns or ctx ends, whichever is first. On ctx
// ending it returns ctx's error, and wait goes on in the background: use it
// only for a wait that the caller then ends (or that ends on its own).
func waitFor(ctx context.Context, wait func()) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
