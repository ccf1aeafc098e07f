package main

import (
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/projections/running"
)

// runningFeed is the running-jobs projection's handler name on the events
// topic: a stable identifier.
const runningFeed = "running-jobs-live"

// runningEventWorkers is how many events of one message the running-jobs
// projection applies at once. It applies them in memory under one lock, so
// more workers only add goroutines and lock handoffs; a few keep the rest
// of a message moving while one event waits for the log (an event of a
// job the projection no longer remembers reads the job's history).
const runningEventWorkers = 4

// projection wires the running-jobs projection to its live feed: a consumer
// of the events topic on a subscription of this replica's own, which
// rebuilds the projection from the log once that subscription exists (events
// appended meanwhile arrive on the feed too, which the fold makes harmless).
// echo follows this process's own events back to the feed, so that its lag
// shows when the feed stalls.
func (c *RunCmd) projection(g *Globals, e *env, l *lifecycle, ps bus.PubSub, log *events.Log, pub message.Publisher,
	reg prometheus.Registerer, echo *bus.Echo, lag *listLag) (*running.Projection, *bus.Consumer, error) {
	proj, err := running.New(running.Config{StaleAfter: c.StaleAfter, RequestTimeout: c.Limits.RequestTimeout,
		History: historyConfig(g, c.Limits.HistoryTimeout), Links: c.links, Behind: lag.behind, CatchingUpAfter: c.CatchingUpAfter, Registerer: reg}, log, e.log)
	if err != nil {
		return nil, nil, fmt.Errorf("configuring the running-jobs projection: %w", err)
	}
	feed, err := bus.NewConsumer(
		bus.ConsumerConfig{Name: runningFeed, Topic: g.EventsTopic, Mode: bus.PerReplica,
			Subscription: c.ReplicaSubscriptionPrefix, DeadLetterTopic: g.DeadLetterTopic, EventWorkers: runningEventWorkers},
		bus.ConsumerDeps{PubSub: ps, Publisher: pub, Logger: e.log,
			Handle: proj.Handle, Prepare: proj.Rebuild, Ready: proj.MarkLive, Registerer: reg, Echo: echo})
	if err != nil {
		return nil, nil, err
	}
	lag.feed = feed.Lag()
	// The feed starts now, not with the components built after it: its
	// replica subscription and the rebuild it starts need none of them, and
	// a restart is ready as soon as the rebuild is done.
	l.startNow("running-jobs projection", proj.Run)
	l.startNow("running-jobs feed", feed.Run)
	l.onStop("running-jobs feed", feed.Close)
	return proj, feed, nil
}

// historyConfig configures the history API: where the BigQuery history is, so
// the page can link to it (--bigquery-project and --bigquery-dataset), and
// how long a request may read the log (--history-timeout).
func historyConfig(g *Globals, timeout time.Duration) running.HistoryConfig {
	b := historySchema(g)
	return running.HistoryConfig{BigQueryProject: b.Project, BigQueryDataset: b.Dataset, Timeout: timeout}
}
