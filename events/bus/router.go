package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Router runs one Watermill handler on a subscription until its context
// ends or Close is called. Either stops intake at once: the messages in
// flight see their contexts end and are handed back to Pub/Sub, so a
// handler that honours its context stops promptly.
type Router struct {
	r    *message.Router
	sub  message.Subscriber
	done chan struct{} // closed when Run returns

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc // ends Run's context
}

// NewRouter returns a router that passes the messages sub delivers from
// topic to h, a handler already wrapped in the Policy. name is the
// handler's stable identifier. The router owns sub.
func NewRouter(name, topic string, sub message.Subscriber, h message.HandlerFunc, logger *slog.Logger) (*Router, error) {
	// The router never gives up on its handlers by itself: Close's context
	// is the one bound on stopping.
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: math.MaxInt64}, watermillLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("creating the router of %s: %w", name, err)
	}
	r.AddConsumerHandler(name, topic, sub, func(msg *message.Message) error {
		_, err := h(msg)
		return err
	})
	return &Router{r: r, sub: sub, done: make(chan struct{})}, nil
}

// Run subscribes and handles messages until ctx ends or Close is called.
// It returns at once if Close was called first, nil whenever it was stopped
// (even while it subscribed), and an error if the router failed to start or
// stopped on its own (its subscription ended).
func (r *Router) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.started = true
	ctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	r.mu.Unlock()
	defer close(r.done)
	defer cancel()
	if err := r.r.Run(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while it subscribed: a stop, not a failure
		}
		return fmt.Errorf("running the router: %w", err)
	}
	if ctx.Err() == nil {
		return errors.New("the router stopped on its own: its subscription ended")
	}
	return nil
}

// Running is closed once Run has subscribed.
func (r *Router) Running() <-chan struct{} { return r.r.Running() }

// Close stops intake, waits until Run has returned and closes the
// subscriber, or gives up when ctx ends. It is idempotent.
func (r *Router) Close(ctx context.Context) error {
	r.mu.Lock()
	started, cancel := r.started, r.cancel
	r.closed = true
	r.mu.Unlock()
	var err error
	if started {
		cancel()
		err = waitFor(ctx, func() { <-r.done })
	}
	if err == nil {
		var closeErr error
		if err = waitFor(ctx, func() { closeErr = r.sub.Close() }); err == nil {
			err = closeErr
		}
	}
	if err != nil {
		return fmt.Errorf("closing the router: %w", err)
	}
	return nil
}
