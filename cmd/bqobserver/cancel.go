package main

import (
	"fmt"
	"net"

	"github.com/bqobserver/bqobserver/enrich/jobsapi"
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
	cn, err := cancel.New(client, app, e.log, nil)
	if err != nil {
		return err
	}
	proj.AttachCanceller(cn)
	return nil
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
