package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/bigtable"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/api/option"

	"github.com/bqobserver/bqobserver/enrich"
	"github.com/bqobserver/bqobserver/enrich/jobsapi"
	"github.com/bqobserver/bqobserver/enrich/lease"
	"github.com/bqobserver/bqobserver/enrich/registry"
	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/projections/running"
)

// enrichFlags configure enrichment from the BigQuery jobs API; RunCmd
// embeds them.
type enrichFlags struct {
	Enrich           bool          `help:"Poll the BigQuery jobs API for the projects with open jobs: live progress, reconciliation of lost completions, discovery of jobs the audit log missed." default:"true" negatable:""`
	BigqueryEndpoint string        `name:"bigquery-endpoint" help:"Base URL of the BigQuery jobs API. Default: Google's; in the embedded mode with the simulation, the simulation's (http://ADDR/simulation/bigquery/v2/). An http:// endpoint is called without credentials."`
	EnrichInterval   time.Duration `help:"Time between two polls of a project with open jobs." default:"5s"`
	SweepInterval    time.Duration `help:"Time between two listings of the projects that had jobs in the last 30 days and have none open." default:"5m"`
	EnrichQPS        float64       `name:"enrich-qps" help:"Most calls per second this replica makes to the jobs API, retries included." default:"20"`
	EnrichLease      time.Duration `help:"How long a replica's lease on a shard of the projects lasts unless renewed; a dead replica's projects are polled again within 1.25 leases plus an interval." default:"15s"`
	EnrichWorkers    int           `help:"Projects polled at once." default:"16"`
}

// jobsAPI is the one BigQuery jobs API client of the service, shared by
// enrichment and cancel: api is the endpoint chosen for this mode, empty
// for Google's. It is nil when there is no jobs API to call (api empty and
// no backend in Google Cloud).
func (c *RunCmd) jobsAPI(e *env, b *backends, reg prometheus.Registerer, api string) (*jobsapi.Client, error) {
	if api == "" && !c.cloud(b) {
		return nil, nil
	}
	return jobsapi.New(e.ctx, jobsapi.Config{QPS: c.EnrichQPS}, reg, jobsAPIOptions(api)...)
}

// enrichment wires enrichment to the running-jobs projection (its source of
// open jobs, and where its live detail and diagnostics are shown) and to
// the appender. client is the jobs API of this mode (nil: none to poll), at
// api (empty: Google's).
func (c *RunCmd) enrichment(g *Globals, e *env, l *lifecycle, b *backends, app *bus.Appender, proj *running.Projection, reg prometheus.Registerer, client *jobsapi.Client, api string) error {
	if !c.Enrich || client == nil {
		e.log.Info("enrichment off", "reason", c.enrichOffReason())
		return nil
	}
	leases, err := enrichLeases(b.Bigtable, g.BigtableTable, c.EnrichLease, proj)
	if err != nil {
		return err
	}
	projects, err := registry.New(b.Bigtable, g.BigtableTable)
	if err != nil {
		return err
	}
	enr, err := enrich.New(enrich.Config{Interval: c.EnrichInterval, SweepInterval: c.SweepInterval, Workers: c.EnrichWorkers},
		enrich.Deps{API: client, Jobs: proj, Appender: app, Leases: leases, Registry: projects, Registerer: reg, Logger: e.log})
	if err != nil {
		return err
	}
	proj.AttachEnrichment(enr)
	run := &enrichRun{done: make(chan struct{})}
	l.start("enrichment", func(ctx context.Context) error { return run.run(ctx, enr, leases, e.log) })
	l.onStop("enrichment leases", func(ctx context.Context) error { return run.release(ctx, leases) })
	e.log.Info("enrichment on", "jobs_api", cmp.Or(api, "https://bigquery.googleapis.com/bigquery/v2/"),
		"interval", c.EnrichInterval.String(), "qps", c.EnrichQPS, "replica", leases.Holder())
	return nil
}

// enrichLeases are this replica's leases on the shards of the projects in
// table, taken only once src is ready: enrichment polls nothing before,
// and a share held meanwhile would go unpolled.
func enrichLeases(client *bigtable.Client, table string, d time.Duration, src interface{ Ready() bool }) (*lease.Leases, error) {
	return lease.New(client, lease.Config{Table: table, Duration: d, Ready: src.Ready})
}

// enrichRun runs enrichment and its leases, and releases the leases once
// no poll runs: other replicas then take the projects at once, and never
// while this one still polls them.
type enrichRun struct {
	mu       sync.Mutex
	started  bool
	stopping bool
	done     chan struct{} // closed once run has returned
}

// run polls under the leases until ctx ends. The leases are taken once
// the projection is ready (lease.Config.Ready), as enrichment polls
// nothing before. It does nothing once release has begun.
func (r *enrichRun) run(ctx context.Context, enr *enrich.Enricher, leases *lease.Leases, log *slog.Logger) error {
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		return nil
	}
	r.started = true
	r.mu.Unlock()
	defer close(r.done)
	var wg sync.WaitGroup
	wg.Go(func() {
		leases.Run(ctx, func(err error) { log.Warn("refreshing enrichment leases", "error", err.Error()) })
	})
	err := enr.Run(ctx) // returns once its polls have ended
	wg.Wait()
	return err
}

// release waits, within ctx, for run to return if it started, then
// releases the leases. It is a closer: it runs before the clients close.
func (r *enrichRun) release(ctx context.Context, leases *lease.Leases) error {
	r.mu.Lock()
	r.stopping = true
	started := r.started
	r.mu.Unlock()
	if started {
		select {
		case <-r.done:
		case <-ctx.Done():
			return fmt.Errorf("waiting for enrichment's polls to end: %w", ctx.Err())
		}
	}
	return leases.Release(ctx)
}

// cloud reports whether any backend is Google Cloud: then the jobs API is
// Google's unless --bigquery-endpoint says otherwise.
func (c *RunCmd) cloud(b *backends) bool {
	return b.PubSubMode == modeCloud || b.BigtableMode == modeCloud
}

func (c *RunCmd) enrichOffReason() string {
	if !c.Enrich {
		return "--no-enrich"
	}
	return "no jobs API to poll: set --bigquery-endpoint (for example to `bqobserver simulate --api-addr`) or run the embedded simulation"
}

// jobsAPIOptions are the client options of a BigQuery jobs API client for
// endpoint: none for Google's ("", Application Default Credentials), the
// endpoint otherwise, without credentials for a plain-HTTP stand-in such as
// the simulation.
func jobsAPIOptions(endpoint string) []option.ClientOption {
	switch {
	case endpoint == "":
		return nil
	case strings.HasPrefix(endpoint, "http://"):
		return []option.ClientOption{option.WithEndpoint(endpoint), option.WithoutAuthentication()}
	}
	return []option.ClientOption{option.WithEndpoint(endpoint)}
}
