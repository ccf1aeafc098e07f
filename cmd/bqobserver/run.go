package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/events/ingest"
	"github.com/bqobserver/bqobserver/internal/problem"
	"github.com/bqobserver/bqobserver/projections/access"
	"github.com/bqobserver/bqobserver/projections/running"
	"github.com/bqobserver/bqobserver/projections/web"
)

// defaultHTTPAddr is where the service listens unless --http-addr or PORT
// says otherwise: loopback, since the embedded mode is for one laptop.
const defaultHTTPAddr = "127.0.0.1:8080"

// RunCmd runs the service: the ingest pipeline, the running-jobs projection
// with its API and UI, and in the embedded mode a simulated organization.
type RunCmd struct {
	enrichFlags `embed:""`

	HTTPAddr                  string        `name:"http-addr" help:"Address of the HTTP server (UI, API, metrics, push intake). Default: :$PORT when PORT is set (Cloud Run sets it), 127.0.0.1:8080 otherwise."`
	PushEndpoint              bool          `help:"Accept Pub/Sub push deliveries of audit entries at POST /push/audit."`
	Pull                      bool          `help:"Pull audit entries from the ingest subscription (--no-pull for push-only deployments)." default:"true" negatable:""`
	AutoCreate                bool          `help:"Create or update topics, subscriptions and the table at start. Always on when no backend is Google Cloud (in-process or emulators)."`
	StaleAfter                time.Duration `help:"Flag a listed job as stale after this long without any event (BigQuery stops queries after 6 hours)." default:"6h"`
	ReplicaSubscriptionPrefix string        `help:"Prefix of this replica's own subscription on the events topic (created at start, deleted at stop, expiring a day after an unclean stop)." default:"bqobserver-running"`
	Simulate                  bool          `help:"In the embedded mode (in-process Pub/Sub), run a simulated organization that publishes audit entries and serves a BigQuery jobs API at /simulation/bigquery/v2/ (without credentials; with --auth other than none, to this machine only)." default:"true" negatable:""`
	SimulateRate              float64       `help:"Jobs per second the simulated organization submits." default:"1"`
	SimulateRateSteps         []string      `help:"Changes of the simulated rate, as AFTER=RATE (comma-separated): AFTER the start, the organization submits RATE jobs per second (--simulate-rate 500 --simulate-rate-steps 10m=50 is ten busy minutes, then a quiet time)."`
	SimulateProjects          int           `help:"Projects in the simulated organization." default:"50"`
	SimulateSeed              uint64        `help:"Seed of the simulated organization." default:"1"`

	Limits      LimitFlags `embed:""`
	accessFlags `embed:""`
	intakeFlags `embed:""`

	links running.Links // what the page links to (the history's report)
}

// Run composes the service, runs it until SIGINT or SIGTERM (or until a
// component fails), and stops it within --shutdown-timeout.
func (c *RunCmd) Run(g *Globals, e *env) (err error) {
	l := newLifecycle(e.ctx, e.log, g.ShutdownTimeout)
	defer func() { err = errors.Join(err, l.stop()) }()
	if err := c.compose(g, e, l); err != nil {
		return err
	}
	l.run()
	return nil
}

// compose builds the components in start order, registering each one's
// goroutines and closer with l: the clients, the dead-letter publisher, the
// appender, ingest, the running-jobs projection, the HTTP server.
func (c *RunCmd) compose(g *Globals, e *env, l *lifecycle) error {
	if err := c.intakeFlags.validate(); err != nil {
		return err
	}
	if err := c.validateIntakes(g); err != nil {
		return err
	}
	if err := c.Limits.Validate(); err != nil {
		return err
	}
	gate, err := c.gate(e.log, httpAddr(c.HTTPAddr, e.getenv))
	if err != nil {
		return err
	}
	b, err := c.open(g, e, l)
	if err != nil {
		return err
	}
	hb, err := c.openHistory(g, e, l)
	if err != nil {
		return err
	}
	c.links = historyLinks(hb, g.LookerStudioTemplate)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	log, err := events.NewLog(b.Bigtable, g.logConfig(e.log))
	if err != nil {
		return err
	}
	ps := bus.PubSub{Client: b.PubSub, Options: b.PubSubOptions, Receive: c.receiveSettings(b)}
	pub, err := ps.Publisher(e.log)
	if err != nil {
		return err
	}
	l.onStopFunc("dead-letter publisher", pub.Close)
	echo := bus.NewEcho() // the appender's events, back on this replica's live feed
	acfg := c.appenderConfig(g.EventsTopic, e.log)
	acfg.Echo = echo
	app, err := bus.NewAppender(acfg, log, b.PubSub, reg)
	if err != nil {
		return err
	}
	l.onStop("appender", app.Close)
	pipe, err := c.ingest(g, e, l, ps, app, pub, reg)
	if err != nil {
		return err
	}
	sim, err := c.newSimulation(b, g, reg, e.log)
	if err != nil {
		return err
	}
	proj, feed, err := c.projection(g, e, l, ps, log, pub, reg, echo, &listLag{ingest: pipe.Lag(), source: sim.behind()})
	if err != nil {
		return err
	}
	if err := c.repair(g, e, l, b, reg, proj, feed.Subscription(), echo); err != nil {
		return err
	}
	if err := c.history(g, e, l, hb, ps, log, pub, reg); err != nil {
		return err
	}
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	if err := c.serveMetrics(e, l, metrics); err != nil {
		return err
	}
	api, err := compressed(proj.Handler())
	if err != nil {
		return err
	}
	mux, err := c.routes(pipe, metrics, api, gate)
	if err != nil {
		return err
	}
	return c.serve(e, l, sim, mux, func(api string) error {
		client, err := c.jobsAPI(e, b, reg, api)
		if err != nil {
			return err
		}
		if err := c.cancelling(e, app, proj, client); err != nil {
			return err
		}
		return c.enrichment(g, e, l, b, app, proj, reg, client, api)
	})
}

// open connects the backends and, where the service may, creates or
// updates what it needs in them.
func (c *RunCmd) open(g *Globals, e *env, l *lifecycle) (*backends, error) {
	b, err := openBackends(e.ctx, g, e.getenv, e.log)
	if err != nil {
		return nil, err
	}
	l.onStopFunc("clients", b.Close)
	if b.BigtableMode == modeEmbedded {
		quietBttestGC()
		c.Limits.setEmbeddedMemoryLimit(e.getenv)
		c.Limits.setEmbeddedGOGC(e.getenv)
	}
	if c.AutoCreate || (b.PubSubMode != modeCloud && b.BigtableMode != modeCloud) {
		top, err := c.topology(g, e, b)
		if err != nil {
			return nil, err
		}
		if err := applySchema(e, g, b, top, c.logRetention(g, b), false); err != nil {
			return nil, err
		}
	}
	if b.BigtableMode == modeEmbedded {
		if err := startBttestGC(e.ctx, b.BigtableAdmin, g.BigtableTable); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// validateIntakes requires an intake, and a subscription to pull from.
func (c *RunCmd) validateIntakes(g *Globals) error {
	switch {
	case !c.Pull && !c.PushEndpoint:
		return errors.New("--no-pull without --push-endpoint: nothing would receive the audit entries")
	case c.Pull && g.AuditSubscription == "":
		return errors.New("--audit-subscription is empty, which means none (a push-only deployment): run with --no-pull --push-endpoint")
	}
	return nil
}

// ingest builds the pipeline: the pull intake on the ingest consumer
// group's own subscription (never the topic's name, never created here:
// that is setup's job), and the push intake.
func (c *RunCmd) ingest(g *Globals, e *env, l *lifecycle, ps bus.PubSub, app *bus.Appender, pub message.Publisher, reg prometheus.Registerer) (*ingest.Pipeline, error) {
	var sub message.Subscriber
	if c.Pull {
		var err error
		if sub, err = ps.Subscriber(g.AuditSubscription, e.log); err != nil {
			return nil, err
		}
	}
	pipe, err := ingest.New(ingest.Config{AuditTopic: g.AuditTopic, DeadLetterTopic: g.DeadLetterTopic, PushTimeout: c.Limits.RequestTimeout},
		ingest.Deps{Appender: app, Subscriber: sub, Publisher: pub, Registerer: reg, Logger: e.log})
	if err != nil {
		return nil, err
	}
	l.start("ingest", pipe.Run)
	l.onStop("ingest", pipe.Close)
	return pipe, nil
}

// serve listens on the HTTP address, with the simulated organization of
// the embedded mode beside the product, and hands withJobsAPI the jobs API
// of this mode: --bigquery-endpoint, else the simulation's, else "".
func (c *RunCmd) serve(e *env, l *lifecycle, sim *embeddedSimulation, mux *http.ServeMux, withJobsAPI func(api string) error) error {
	addr := httpAddr(c.HTTPAddr, e.getenv)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	sim.mount(mux, c.Auth == string(access.ModeNone))
	if err := withJobsAPI(cmp.Or(c.BigqueryEndpoint, simulationEndpoint(sim, ln))); err != nil {
		return errors.Join(err, ln.Close())
	}
	srv := newHTTPServer(ln, securityHeaders(loopbackHosts(mux, c.Auth == string(access.ModeNone) && !c.AllowUnauthenticated, e.log)), e.log)
	l.start("simulation", func(ctx context.Context) error { return sim.run(ctx, l.budget, e.log) })
	l.start("HTTP server", srv.serve)
	l.onStop("HTTP server", srv.shutdown)
	fmt.Fprintf(e.stdout, "bqobserver is serving on http://%s\n", ln.Addr())
	if sim != nil {
		e.log.Info("simulating an organization", "projects", c.SimulateProjects, "jobs_per_second", c.SimulateRate,
			"jobs_api", "http://"+ln.Addr().String()+simulationPath+"/bigquery/v2/")
	}
	return nil
}

// httpAddr is the address to listen on: flag (or BQOBSERVER_HTTP_ADDR),
// else ":$PORT" when PORT is set, as Cloud Run requires, else loopback.
func httpAddr(flag string, getenv func(string) string) string {
	switch port := getenv("PORT"); {
	case flag != "":
		return flag
	case port != "":
		return ":" + port
	}
	return defaultHTTPAddr
}

// routes serves the web UI at "/", the projection's API beside it, the
// metrics (unless on --metrics-addr, to callers who see every job) and the
// profiles (with --pprof, to admins), all to authenticated callers; health
// and readiness to anyone; and the push intake, when enabled, to Pub/Sub.
func (c *RunCmd) routes(pipe *ingest.Pipeline, metrics, api http.Handler, g *gate) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	if c.MetricsAddr == "" {
		mux.Handle("GET /metrics", g.atLeast(access.RoleViewer, "metrics")(metrics))
		mux.Handle("/metrics", problem.Fallback(mux, ""))
	}
	for _, p := range []string{"/api/", "/_ah/get-handlers/v1/jobs"} {
		mux.Handle(p, g.users(api))
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		mux.Handle(p, g.auth.Optional(api)) // open, with more for callers who see every job
	}
	mux.Handle("/", g.users(web.Handler()))
	c.Limits.mountPprof(mux, g.atLeast(access.RoleAdmin, "profiles"))
	if c.PushEndpoint {
		push, err := g.push(pipe.PushHandler(), pipe.RefusePush)
		if err != nil {
			return nil, err
		}
		mux.Handle(pushPath, push)
	}
	return mux, nil
}

// pushPath is where the push intake takes Pub/Sub's deliveries.
const pushPath = "/push/audit"
