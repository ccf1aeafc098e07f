package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/bqobserver/bqobserver/enrich/jobsapi"
	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/events/cancel"
	"github.com/bqobserver/bqobserver/projections/running"
)

// cancelling lets admins cancel jobs from the API through client, the jobs
// API of this mode shared with enrichment, recording each request through
// the appender. Without a jobs API (emulators without a simulation) the API
// answers that it cannot cancel.
func (c *RunCmd) cancelling(e *env, app *bus.Appender, proj *running.Projection, client *jobsapi.Client) error {
	if client == nil {
		e.log.Info("cancelling jobs off", "reason", "no BigQuery jobs API in this mode")
		return nil
	}
	cn, err := cancel.New(client, appendWithin{app: app, within: c.Limits.RequestTimeout}, e.log, nil)
	if err != nil {
		return err
	}
	proj.AttachCanceller(cn)
	return nil
}

// appendWithin is the one appender with each append bounded by within
// (--request-timeout): a cancel request waits for BigQuery's jobs.cancel
// as long as the API allows, but for the event log, like every request
// that touches Bigtable, only that long; past it the request answers 503
// with Retry-After, and asking again is safe.
type appendWithin struct {
	app interface {
		Append(ctx context.Context, evs []events.Event) error
	}
	within time.Duration
}

func (a appendWithin) Append(ctx context.Context, evs []events.Event) error {
	ctx, cancel := context.WithTimeout(ctx, a.within)
	defer cancel()
	return a.app.Append(ctx, evs)
}

// simulationEndpoint is the jobs API of the embedded simulation served on
// ln, or "" without one.
func simulationEndpoint(sim *embeddedSimulation, ln net.Listener) string {
	if sim == nil {
		return ""
	}
	addr := ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(addr.Port)) + simulationPath + "/bigquery/v2/"
}
