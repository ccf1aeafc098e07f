package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-googlecloud/v2/pkg/googlecloud"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"cloud.google.com/go/pubsub/v2"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/ingest"
	"github.com/bqobserver/bqobserver/projections/web"
)

// RunCmd runs the service: the ingest pipeline, the running-jobs projection
// with its API and UI, and in the embedded mode a simulated organization.
type RunCmd struct {
	HTTPAddr                  string        `name:"http-addr" help:"Address of the HTTP server (UI, API, metrics, push intake)." default:"127.0.0.1:8080"`
	PushEndpoint              bool          `help:"Accept Pub/Sub push deliveries of audit entries at POST /push/audit."`
	Pull                      bool          `help:"Pull audit entries from the ingest subscription (--no-pull for push-only deployments)." default:"true" negatable:""`
	AutoCreate                bool          `help:"Create or update topics, subscriptions and the table at start. Always on when no backend is Google Cloud (in-process or emulators)."`
	ShutdownTimeout           time.Duration `help:"Bound on the graceful shutdown after SIGTERM: in-flight entries are handed back to Pub/Sub, HTTP requests finish." default:"8s"`
	StaleAfter                time.Duration `help:"Flag a listed job as stale after this long without any event (BigQuery stops queries after 6 hours)." default:"6h"`
	ReplicaSubscriptionPrefix string        `help:"Prefix of this replica's own subscription on the events topic (created at start, deleted at stop, expiring a day after an unclean stop)." default:"bqobserver-running"`
	Simulate                  bool          `help:"In the embedded mode (in-process Pub/Sub), run a simulated organization that publishes audit entries and serves a BigQuery jobs API at /simulation/bigquery/v2/." default:"true" negatable:""`
	SimulateRate              float64       `help:"Jobs per second the simulated organization submits." default:"1"`
	SimulateProjects          int           `help:"Projects in the simulated organization." default:"50"`
	SimulateSeed              uint64        `help:"Seed of the simulated organization." default:"1"`
}

// Run composes and runs the service until SIGINT or SIGTERM.
func (c *RunCmd) Run(g *Globals, e *env) (err error) {
	b, err := openBackends(e.ctx, g, e.getenv, e.log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.Close()) }()
	if c.AutoCreate || (b.PubSubMode != modeCloud && b.BigtableMode != modeCloud) {
		if err := applySchema(e, g, b, topology(g, b.PubSubProject)); err != nil {
			return err
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	log, err := events.NewLog(b.Bigtable, events.LogConfig{Table: g.BigtableTable})
	if err != nil {
		return err
	}
	pipe, pub, err := c.ingest(g, e, b, log, reg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, pipe.Close(), pub.Close()) }()
	proj, err := c.newProjection(e, g, b, log, pub)
	if err != nil {
		return err
	}
	sim, err := c.newSimulation(b, g)
	if err != nil {
		return errors.Join(err, proj.deleteSubscription())
	}
	ln, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return errors.Join(fmt.Errorf("listening on %s: %w", c.HTTPAddr, err), proj.deleteSubscription())
	}
	mux := c.routes(pipe, reg, proj.proj.Handler())
	sim.mount(mux)
	fmt.Fprintf(e.stdout, "bqobserver is serving on http://%s\n", ln.Addr())
	if sim != nil {
		e.log.Info("simulating an organization", "projects", c.SimulateProjects, "jobs_per_second", c.SimulateRate,
			"jobs_api", "http://"+ln.Addr().String()+simulationPath+"/bigquery/v2/")
	}
	return c.serve(e, ln, mux, pipe, proj, sim)
}

// ingest builds the pipeline and the Pub/Sub publisher it shares with the
// push intake.
func (c *RunCmd) ingest(g *Globals, e *env, b *backends, log *events.Log, reg prometheus.Registerer) (*ingest.Pipeline, message.Publisher, error) {
	wlog := watermill.NewSlogLogger(e.log)
	pub, err := googlecloud.NewPublisher(googlecloud.PublisherConfig{
		ProjectID:                b.PubSubProject,
		DoNotCheckTopicExistence: true,
		ClientOptions:            b.PubSubOptions,
	}, wlog)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting the Pub/Sub publisher: %w", err)
	}
	var sub message.Subscriber
	if c.Pull {
		if sub, err = c.subscriber(g, b, wlog); err != nil {
			return nil, nil, errors.Join(err, pub.Close())
		}
	}
	pipe, err := ingest.New(ingest.Config{AuditTopic: g.AuditTopic, EventsTopic: g.EventsTopic, DeadLetterTopic: g.DeadLetterTopic},
		ingest.Deps{Log: log, Subscriber: sub, Publisher: pub, Registerer: reg, Logger: e.log, CloseTimeout: c.ShutdownTimeout})
	if err != nil {
		return nil, nil, errors.Join(err, pub.Close())
	}
	return pipe, pub, nil
}

// subscriber pulls from the ingest consumer group's own subscription (never
// the topic's name) and never creates it: that is setup's job.
func (c *RunCmd) subscriber(g *Globals, b *backends, wlog watermill.LoggerAdapter) (message.Subscriber, error) {
	sub, err := googlecloud.NewSubscriber(googlecloud.SubscriberConfig{
		ProjectID:                        b.PubSubProject,
		GenerateSubscriptionName:         func(string) string { return g.AuditSubscription },
		DoNotCreateSubscriptionIfMissing: true,
		DoNotCreateTopicIfMissing:        true,
		ReceiveSettings:                  receiveSettings(b),
		ClientOptions:                    b.PubSubOptions,
		Unmarshaler:                      ingest.Unmarshaler{},
	}, wlog)
	if err != nil {
		return nil, fmt.Errorf("connecting the Pub/Sub subscriber: %w", err)
	}
	return sub, nil
}

// receiveSettings are the flow-control settings of every pull subscriber.
func receiveSettings(b *backends) pubsub.ReceiveSettings {
	rs := pubsub.DefaultReceiveSettings
	rs.MaxOutstandingMessages = 2000
	if b.PubSubMode == modeEmbedded {
		// The in-process Pub/Sub hands each stream about a hundred
		// messages a second; more streams lift that ceiling.
		rs.NumGoroutines = 8
	}
	return rs
}

// routes serves the web UI at "/", the projection's API, health and
// readiness beside it, the metrics, and the push intake when enabled.
func (c *RunCmd) routes(pipe *ingest.Pipeline, reg *prometheus.Registry, api http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	for _, p := range []string{"/api/", "/_ah/get-handlers/v1/jobs", "/healthz", "/readyz"} {
		mux.Handle(p, api)
	}
	mux.Handle("/", web.Handler())
	if c.PushEndpoint {
		mux.Handle("/push/audit", pipe.PushHandler())
	}
	return mux
}

// serve runs the pipeline and the HTTP server until the process is told to
// stop or one of them fails.
func (c *RunCmd) serve(e *env, ln net.Listener, h http.Handler, pipe *ingest.Pipeline, proj *liveProjection, sim *embeddedSimulation) error {
	grp, ctx := errgroup.WithContext(e.ctx)
	grp.Go(func() error { return sim.run(ctx) })
	grp.Go(func() error { return proj.run(ctx, e) })
	grp.Go(func() error {
		if err := pipe.Run(ctx); err != nil {
			return err
		}
		if e.ctx.Err() == nil && ctx.Err() == nil {
			return errors.New("the ingest pipeline stopped on its own")
		}
		return nil
	})
	grp.Go(func() error { return serveHTTP(ctx, ln, h, c.ShutdownTimeout, e.log) })
	<-ctx.Done()
	e.log.Info("shutting down", "bound", c.ShutdownTimeout.String())
	return waitBounded(grp, c.ShutdownTimeout+2*time.Second)
}

// waitBounded waits for grp, giving up after d so that shutdown stays
// bounded even if a component hangs.
func waitBounded(grp *errgroup.Group, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- grp.Wait() }()
	select {
	case err := <-done:
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	case <-time.After(d):
		return fmt.Errorf("shutdown did not finish within %v", d)
	}
}
