package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-googlecloud/v2/pkg/googlecloud"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/ingest"
	"github.com/bqobserver/bqobserver/projections/running"
	"github.com/bqobserver/bqobserver/schema"
)

// liveProjection is the running-jobs projection with its live feed: a
// subscription of this replica's own on the events topic, consumed by a
// Watermill router.
type liveProjection struct {
	proj    *running.Projection
	replica schema.ReplicaSubscription
	router  *message.Router
	b       *backends
}

// newProjection creates this replica's subscription first, so that every
// event appended from now on reaches the live feed; the rebuild that follows
// may see some of them too, which the fold makes harmless.
func (c *RunCmd) newProjection(e *env, g *Globals, b *backends, log *events.Log, pub message.Publisher) (*liveProjection, error) {
	proj, err := running.New(running.Config{StaleAfter: c.StaleAfter}, log, e.log)
	if err != nil {
		return nil, fmt.Errorf("configuring the running-jobs projection: %w", err)
	}
	lp := &liveProjection{proj: proj, b: b, replica: schema.ReplicaSubscription{
		Project: b.PubSubProject, Topic: g.EventsTopic, Subscription: replicaName(c.ReplicaSubscriptionPrefix)}}
	if err := lp.replica.Create(e.ctx, b.PubSub); err != nil {
		return nil, err
	}
	if lp.router, err = lp.feed(e, b, g, pub); err != nil {
		return nil, errors.Join(err, lp.deleteSubscription())
	}
	return lp, nil
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

// feed builds the router that applies the events topic to the projection.
// A message that is not an event goes to the dead-letter topic; a failure
// to read the log is retried, then handed back.
func (lp *liveProjection) feed(e *env, b *backends, g *Globals, pub message.Publisher) (*message.Router, error) {
	wlog := watermill.NewSlogLogger(e.log)
	sub, err := googlecloud.NewSubscriber(googlecloud.SubscriberConfig{
		ProjectID:                        b.PubSubProject,
		GenerateSubscriptionName:         func(string) string { return lp.replica.Subscription },
		DoNotCreateSubscriptionIfMissing: true,
		ClientOptions:                    b.PubSubOptions,
		ReceiveSettings:                  receiveSettings(b),
		Unmarshaler:                      ingest.Unmarshaler{},
	}, wlog)
	if err != nil {
		return nil, fmt.Errorf("connecting the events subscriber: %w", err)
	}
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, wlog)
	if err != nil {
		return nil, err
	}
	poison, err := middleware.PoisonQueueWithFilter(pub, g.DeadLetterTopic,
		func(err error) bool { return errors.Is(err, events.ErrInvalid) })
	if err != nil {
		return nil, err
	}
	retry := middleware.Retry{MaxRetries: 3, InitialInterval: 100 * time.Millisecond, MaxInterval: 2 * time.Second,
		Multiplier: 2, RandomizationFactor: 0.5,
		ShouldRetry: func(p middleware.RetryParams) bool { return !errors.Is(p.Err, events.ErrInvalid) }}
	h := r.AddNoPublisherHandler("running-jobs-live", g.EventsTopic, sub, lp.proj.HandleMessage)
	h.AddMiddleware(poison, retry.Middleware, middleware.Recoverer)
	return r, nil
}

// run feeds the projection, rebuilds it, marks it live and sweeps it for
// stale jobs until ctx ends; then it ends its streams and deletes the
// replica's subscription.
func (lp *liveProjection) run(ctx context.Context, e *env) error {
	defer lp.proj.Close()
	errc := make(chan error, 1)
	go func() { errc <- lp.router.Run(ctx) }()
	select {
	case <-lp.router.Running():
	case err := <-errc:
		return fmt.Errorf("starting the projection's live feed: %w", err)
	}
	start := time.Now()
	if err := lp.rebuild(ctx, e); err != nil {
		lp.router.Close()
		return errors.Join(err, <-errc, lp.deleteSubscription())
	}
	lp.proj.MarkLive()
	e.log.Info("running-jobs projection live", "jobs", lp.proj.Len(), "rebuild", time.Since(start).String(),
		"subscription", lp.replica.Subscription)
	err := lp.proj.Run(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return errors.Join(err, <-errc, lp.deleteSubscription())
}

// rebuild rebuilds the projection, trying again with backoff while the log
// is unavailable; the API answers 503 meanwhile.
func (lp *liveProjection) rebuild(ctx context.Context, e *env) error {
	wait := time.Second
	for {
		err := lp.proj.Rebuild(ctx)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return nil
		case !errors.Is(err, events.ErrUnavailable):
			return fmt.Errorf("rebuilding the running-jobs projection: %w", err)
		}
		e.log.Warn("rebuilding the running-jobs projection failed; trying again", "error", err.Error(), "in", wait.String())
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func (lp *liveProjection) deleteSubscription() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return lp.replica.Delete(ctx, lp.b.PubSub)
}
