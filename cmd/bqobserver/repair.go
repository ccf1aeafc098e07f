package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/projections/running"
	"github.com/bqobserver/bqobserver/schema"
)

// repair starts the repairer of the run.
func (c *RunCmd) repair(g *Globals, e *env, l *lifecycle, b *backends, reg prometheus.Registerer, proj *running.Projection, replica string, echo *bus.Echo) error {
	top, err := c.topology(g, e, b)
	if err != nil {
		return err
	}
	r, err := newRepairer(&repairer{
		log: e.log, b: b, table: g.BigtableTable, retention: c.logRetention(g, b),
		top:       top,
		replica:   schema.ReplicaSubscription{Project: b.PubSubProject, Topic: g.EventsTopic, Subscription: replica},
		mayCreate: c.AutoCreate || (b.PubSubMode != modeCloud && b.BigtableMode != modeCloud),
		resync:    proj.Resync, echo: echo, ready: proj.Ready, reportLog: proj.ReportLog, reportPubSub: proj.ReportPubSub,
		reportDetached: proj.ReportDetached,
		probeTimeout:   c.Limits.RequestTimeout,
	}, reg)
	if err != nil {
		return err
	}
	l.start("repair", func(ctx context.Context) error { return r.run(ctx, c.Limits.RepairInterval) })
	return nil
}

// probeRowKey is a row the event log never writes (its rows start with a
// prefix and '#'): reading it only says whether the table answers.
const probeRowKey = "repair-probe"

// repairer looks, every --repair-interval, for what the service needs and
// someone or something took away: the event log's table (an emulator
// restarted empty, a deleted table), the topics and subscriptions (an
// emulator restarted, a subscription deleted), this replica's own
// subscription. It creates what is missing again where the service may
// (--auto-create, or no backend is Google Cloud; this replica's
// subscription always), and otherwise says so loudly: an error in the log
// at every check and bqobserver_missing_resources{kind,name} at 1. Intake
// resumes by itself once a subscription exists again (the subscriber keeps
// retrying), appends once the table does (they are retried). What Pub/Sub
// received while a subscription was missing is lost with it, and a table
// that vanished took its events along: the repair says so in its log.
// Whether the table answered its latest probe (within --request-timeout),
// and whether Pub/Sub did, go to the projection, whose /readyz reports
// them, and to bqobserver_backend_reachable{backend}: a Pub/Sub that does
// not answer stops everything reaching the list, and the lag, measured on
// what arrives, cannot see it.
type repairer struct {
	log       *slog.Logger
	b         *backends
	table     string
	retention time.Duration
	top       schema.PubSub
	replica   schema.ReplicaSubscription
	mayCreate bool
	// resync brings the projection up to date after its subscription was
	// created again, and echo then forgets what was published before;
	// ready says whether the projection (which creates that subscription
	// at start) is running yet; reportLog and reportPubSub tell it whether
	// the event log and Pub/Sub answered the latest check (nil) or why not.
	resync       func(context.Context) error
	echo         *bus.Echo // this replica's events on their way back to its feed
	ready        func() bool
	reportLog    func(context.Context, error)
	reportPubSub func(context.Context, error)
	// reportDetached tells it which subscriptions the latest check of
	// Pub/Sub, when Pub/Sub answered, found attached to a deleted topic.
	reportDetached func(context.Context, []string)
	// probeTimeout bounds one probe of one resource: --request-timeout,
	// the bound of everything else that waits for Bigtable.
	probeTimeout time.Duration
	// repairTimeout bounds one repair: creating what is missing and, for
	// this replica's subscription, the resync after it, which does a
	// rebuild's work (default bus.DefaultPrepareTimeout, a rebuild's
	// bound). A backend that does not answer fails the repair, which the
	// next check tries again, instead of stopping every later check.
	repairTimeout time.Duration

	missing   *prometheus.GaugeVec
	recreated *prometheus.CounterVec
	reachable *prometheus.GaugeVec
	detached  *prometheus.GaugeVec
	// detachedNow are the subscriptions the current check found attached
	// to a deleted topic.
	detachedNow []string
}

// deletedTopic is the topic Pub/Sub names for a subscription whose topic
// was deleted: it keeps what it held, but nothing published to a topic of
// the old name, created again, ever reaches it.
const deletedTopic = "_deleted-topic_"

// resource is one thing the repairer checks.
type resource struct {
	kind, name string
	// probe reports whether the resource is missing; an error means it
	// could not tell (unreachable, no permission to look).
	probe func(context.Context) (missing bool, err error)
}

func newRepairer(r *repairer, reg prometheus.Registerer) (*repairer, error) {
	if r.repairTimeout <= 0 {
		r.repairTimeout = bus.DefaultPrepareTimeout
	}
	r.missing = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "bqobserver", Name: "missing_resources",
		Help: "1 for each table, topic or subscription the service needs and found missing at its last check, and could not create again."},
		[]string{"kind", "name"})
	r.recreated = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "bqobserver", Name: "recreated_resources_total",
		Help: "Tables, topics and subscriptions the service found missing and created again."}, []string{"kind"})
	r.reachable = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "bqobserver", Name: "backend_reachable",
		Help: "1 while the backend (event_log, pubsub) answered the service's latest check of its resources, 0 while it did not."},
		[]string{"backend"})
	r.detached = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "bqobserver", Name: "detached_subscription",
		Help: "1 while the subscription is attached to a deleted topic (its topic was deleted, and created again or not): nothing published reaches it."},
		[]string{"name"})
	for _, c := range []prometheus.Collector{r.missing, r.recreated, r.reachable, r.detached} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering the repair metrics: %w", err)
		}
	}
	return r, nil
}

// run checks every interval until ctx ends.
func (r *repairer) run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			r.check(ctx)
		}
	}
}

// check probes every resource and repairs what is missing.
func (r *repairer) check(ctx context.Context) {
	r.checkTable(ctx)
	r.detachedNow = r.detachedNow[:0]
	var lost []resource
	var unreachable error
	for _, res := range r.pubsubResources() {
		missing, err := r.probe(ctx, res)
		if unanswered(err) {
			// The others share the backend: they would wait as long.
			unreachable = fmt.Errorf("looking up %s %s: %w", res.kind, res.name, err)
			break
		}
		if missing {
			lost = append(lost, res)
		}
	}
	if ctx.Err() != nil {
		return // stopping: a probe cut short says nothing of Pub/Sub
	}
	r.report(ctx, "pubsub", r.reportPubSub, unreachable)
	if unreachable != nil {
		return // what is attached where is unknown: the latest answer stands
	}
	if len(r.detachedNow) > 0 {
		// Loud, at every check, and never deleted here: a detached
		// subscription still holds what was published before, which the
		// service may still be pulling.
		err := fmt.Errorf("subscription %s is attached to a deleted topic: nothing published to its topic, even created again, reaches it; "+
			"once it is drained, delete it, and the service (with --auto-create) or bqobserver setup creates it again on the topic", strings.Join(r.detachedNow, ", "))
		r.log.Error("a subscription the service needs lost its topic: entries published now are lost to the service", "error", err.Error())
	}
	defer func() { r.reportDetached(ctx, r.detachedNow) }()
	if len(lost) > 0 {
		r.repair(ctx, lost[0].kind, lost[0].name, r.mayCreate, r.createTopology)
	}
	if !r.ready() {
		return
	}
	before := len(r.detachedNow)
	missing, err := r.probe(ctx, r.replicaResource())
	if err == nil && len(r.detachedNow) > before {
		// This replica's own subscription: what it held is in the log, and
		// the resync after creating it again reads it from there.
		if missing = r.deleteDetachedReplica(ctx); missing {
			r.detachedNow = r.detachedNow[:before]
		}
	}
	if missing {
		r.repair(ctx, "subscription", r.replica.Subscription, true, r.createReplica)
	}
}

// deleteDetachedReplica deletes this replica's subscription, found attached
// to a deleted topic, so that it can be created again on the topic; it
// reports whether it is gone.
func (r *repairer) deleteDetachedReplica(ctx context.Context) bool {
	dctx, cancel := context.WithTimeout(ctx, r.repairTimeout)
	defer cancel()
	name := "projects/" + r.top.Project + "/subscriptions/" + r.replica.Subscription
	err := r.b.PubSub.SubscriptionAdminClient.DeleteSubscription(dctx, &pubsubpb.DeleteSubscriptionRequest{Subscription: name})
	if err != nil && status.Code(err) != codes.NotFound {
		r.log.Error("this replica's subscription lost its topic, and deleting it to create it again failed", "name", r.replica.Subscription, "error", err.Error())
		return false
	}
	r.detached.WithLabelValues(r.replica.Subscription).Set(0)
	return true
}

// checkTable probes the event log's table, repairs it if it is missing,
// and reports to the projection whether the log answers.
func (r *repairer) checkTable(ctx context.Context) {
	missing, err := r.probe(ctx, r.tableResource())
	switch {
	case ctx.Err() != nil:
		// stopping: a probe cut short says nothing of the log
	case err != nil:
		r.report(ctx, "event_log", r.reportLog, fmt.Errorf("reading table %s: %w", r.table, err))
	case missing && !r.repair(ctx, "table", r.table, r.mayCreate, r.createTable):
		r.report(ctx, "event_log", r.reportLog, fmt.Errorf("table %s is missing", r.table))
	default:
		r.report(ctx, "event_log", r.reportLog, nil)
	}
}

// report hands the outcome of a backend's check (nil: it answered) to the
// projection and to bqobserver_backend_reachable.
func (r *repairer) report(ctx context.Context, backend string, to func(context.Context, error), err error) {
	r.reachable.WithLabelValues(backend).Set(boolGauge(err == nil))
	to(ctx, err)
}

// unanswered reports whether a probe's error means that the backend did
// not answer. A refusal (no permission to look, which bqobserver doctor
// reports) is an answer.
func unanswered(err error) bool {
	switch status.Code(err) {
	case codes.OK, codes.PermissionDenied, codes.Unauthenticated:
		return false
	}
	return true
}

// probe reports whether res is missing, setting its gauge, or the error
// that kept it from telling.
func (r *repairer) probe(ctx context.Context, res resource) (bool, error) {
	pctx, cancel := context.WithTimeout(ctx, r.probeTimeout)
	defer cancel()
	missing, err := res.probe(pctx)
	if err != nil {
		r.log.Debug("could not check a resource", "kind", res.kind, "name", res.name, "error", err.Error())
		return false, err
	}
	r.missing.WithLabelValues(res.kind, res.name).Set(boolGauge(missing))
	return missing, nil
}

// repair creates a missing resource again with create, when allowed, or
// reports it. It returns whether the resource exists again.
func (r *repairer) repair(ctx context.Context, kind, name string, allowed bool, create func(context.Context) error) bool {
	if !allowed {
		r.log.Error("a resource the service needs is missing, and the service may not create it: run bqobserver setup (or run with --auto-create)",
			"kind", kind, "name", name)
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, r.repairTimeout)
	defer cancel()
	if err := create(cctx); err != nil {
		if ctx.Err() == nil {
			r.log.Error("a resource the service needs is missing, and creating it again failed", "kind", kind, "name", name, "error", err.Error())
		}
		return false
	}
	r.recreated.WithLabelValues(kind).Inc()
	r.missing.WithLabelValues(kind, name).Set(0)
	r.log.Warn("created again a resource the service needs, which was missing: what it held is lost", "kind", kind, "name", name)
	return true
}

func (r *repairer) tableResource() resource {
	return resource{kind: "table", name: r.table, probe: func(ctx context.Context) (bool, error) {
		_, err := r.b.Bigtable.Open(r.table).ReadRow(ctx, probeRowKey)
		return notFound(err)
	}}
}

func (r *repairer) createTable(ctx context.Context) error {
	if err := schema.ApplyBigtable(ctx, r.b.BigtableAdmin, r.table, r.retention); err != nil {
		return err
	}
	if r.b.BigtableMode == modeEmbedded {
		return startBttestGC(ctx, r.b.BigtableAdmin, r.table)
	}
	return nil
}

// pubsubResources are the topics and subscriptions setup makes (the
// history sink's when the history is written).
func (r *repairer) pubsubResources() []resource {
	t := r.top
	var out []resource
	for _, id := range []string{t.AuditTopic, t.EventsTopic, t.DeadLetterTopic} {
		name := "projects/" + t.Project + "/topics/" + id
		out = append(out, resource{kind: "topic", name: id, probe: func(ctx context.Context) (bool, error) {
			_, err := r.b.PubSub.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: name})
			return notFound(err)
		}})
	}
	for _, id := range []string{t.IngestSubscription, t.DeadLetterSubscription, t.HistorySubscription} {
		if id != "" {
			out = append(out, r.subscriptionResource(id))
		}
	}
	return out
}

func (r *repairer) replicaResource() resource { return r.subscriptionResource(r.replica.Subscription) }

func (r *repairer) subscriptionResource(id string) resource {
	name := "projects/" + r.top.Project + "/subscriptions/" + id
	return resource{kind: "subscription", name: id, probe: func(ctx context.Context) (bool, error) {
		s, err := r.b.PubSub.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: name})
		detached := err == nil && s.GetTopic() == deletedTopic
		if err == nil || status.Code(err) == codes.NotFound {
			r.detached.WithLabelValues(id).Set(boolGauge(detached))
		}
		if detached {
			r.detachedNow = append(r.detachedNow, id)
		}
		return notFound(err)
	}}
}

// createTopology creates the missing topics and subscriptions, and then
// the replica's subscription if it went with them.
func (r *repairer) createTopology(ctx context.Context) error {
	if err, _ := exceptElsewhere(schema.ApplyPubSub(ctx, r.b.PubSub, r.top)); err != nil {
		return err
	}
	for _, res := range r.pubsubResources() {
		r.missing.WithLabelValues(res.kind, res.name).Set(0)
	}
	return nil
}

// createReplica creates this replica's subscription again and resyncs the
// projection, which missed what was published meanwhile.
func (r *repairer) createReplica(ctx context.Context) error {
	if err := r.replica.Create(ctx, r.b.PubSub); err != nil && status.Code(err) != codes.AlreadyExists {
		return err
	}
	r.echo.Reset() // what was published before can never arrive; the resync reads it from the log
	return r.resync(ctx)
}

// notFound classifies a probe's error: NotFound means missing, nil
// present, anything else unknown.
func notFound(err error) (bool, error) {
	switch {
	case err == nil:
		return false, nil
	case status.Code(err) == codes.NotFound:
		return true, nil
	}
	return false, err
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// exceptElsewhere is err without its parts that are subscriptions attached
// to another topic, or to none: the check reports those (detached), loudly,
// and setup leaves them alone, so they do not fail the creation of what
// was missing beside them. elsewhere says whether there were any.
func exceptElsewhere(err error) (rest error, elsewhere bool) {
	parts := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		parts = joined.Unwrap()
	}
	var kept []error
	for _, e := range parts {
		if errors.Is(e, schema.ErrSubscriptionElsewhere) {
			elsewhere = true
		} else {
			kept = append(kept, e)
		}
	}
	if !elsewhere {
		return err, false
	}
	return errors.Join(kept...), true
}
