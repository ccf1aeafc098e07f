package main

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/projections/history"
	"github.com/bqobserver/bqobserver/projections/running"
	"github.com/bqobserver/bqobserver/schema"
)

// historyFeed is the history sink's handler name on the events topic: a
// stable identifier.
const historyFeed = "history-sink"

// withHistory adds the history sink's consumer group to a topology when
// the history is written.
func withHistory(top schema.PubSub, g *Globals, env func(string) string) (schema.PubSub, error) {
	on, err := historyOn(g, env)
	if on {
		top.HistorySubscription = g.HistorySubscription
	}
	return top, err
}

// openHistory connects to the history's BigQuery when the history is
// written, and creates or updates its dataset, table and views where run
// may (--auto-create, or the emulator). Without a BigQuery backend it says
// once that the history is not written, and returns nil.
func (c *RunCmd) openHistory(g *Globals, e *env, l *lifecycle) (*bigQueryBackend, error) {
	on, err := historyOn(g, e.getenv)
	if err != nil || !on {
		if err == nil {
			e.log.Info("the job history is not written to BigQuery: no BigQuery backend (set BIGQUERY_EMULATOR_HOST and BIGQUERY_STORAGE_EMULATOR_HOST, or --bigquery-project) or --no-history; the history stays in the event log",
				"bigquery", bigQueryMode(g, e.getenv))
		}
		return nil, err
	}
	hb, err := openBigQuery(e.ctx, g, e.getenv, true, e.log)
	if err != nil {
		return nil, err
	}
	l.onStopFunc("BigQuery clients", hb.Close)
	if c.AutoCreate || hb.Mode == modeEmulator {
		if err := hb.apply(e.ctx, e.log); err != nil {
			return nil, err
		}
	}
	return hb, nil
}

// history wires the history sink: a consumer of the events topic in the
// history's own consumer group (Shared: each event reaches one replica),
// which writes each job's current version to BigQuery. Its closer is
// registered before the consumer's, so at shutdown the consumer stops
// first and the sink then writes what it holds.
func (c *RunCmd) history(g *Globals, e *env, l *lifecycle, hb *bigQueryBackend, ps bus.PubSub, log *events.Log, pub message.Publisher, reg prometheus.Registerer) error {
	if hb == nil {
		return nil
	}
	sink, err := history.New(history.Config{}, log, history.Destination{Client: hb.Write, BigQuery: hb.Schema}, reg)
	if err != nil {
		return err
	}
	feed, err := bus.NewConsumer(
		bus.ConsumerConfig{Name: historyFeed, Topic: g.EventsTopic, Mode: bus.Shared,
			Subscription: g.HistorySubscription, DeadLetterTopic: g.DeadLetterTopic},
		bus.ConsumerDeps{PubSub: ps, Publisher: pub, Logger: e.log, Handle: sink.Handle})
	if err != nil {
		return err
	}
	l.onStop("history sink", sink.Close)
	l.start("history feed", feed.Run)
	l.onStop("history feed", feed.Close)
	return nil
}

// historyLinks are the links of the history the page shows.
func historyLinks(hb *bigQueryBackend, template string) running.Links {
	if hb == nil {
		return running.Links{}
	}
	return running.Links{HistoryReport: history.LookerStudioURL(hb.Schema, template),
		HistoryDataset: hb.Schema.Project + "." + hb.Schema.Dataset}
}

// setupHistory creates or updates the history in BigQuery for setup, when
// the history is written (top then has its subscription), and says so.
func setupHistory(e *env, g *Globals, top schema.PubSub) error {
	if top.HistorySubscription == "" {
		return nil
	}
	hb, err := openBigQuery(e.ctx, g, e.getenv, false, e.log)
	if err != nil {
		return err
	}
	defer hb.Close()
	if err := hb.apply(e.ctx, e.log); err != nil {
		return err
	}
	b := hb.Schema
	fmt.Fprintf(e.stdout, "set up subscription %s; BigQuery dataset %s.%s (%s) with table %s and views %s, %s, %s (partition expiration %v)\n",
		top.HistorySubscription, b.Project, b.Dataset, b.Location, schema.JobVersionsTable,
		schema.JobsView, schema.JobsRunningView, schema.JobsDailyView, b.PartitionExpiration)
	return nil
}
