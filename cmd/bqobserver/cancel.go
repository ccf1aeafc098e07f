package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/events/cancel"
	"github.com/bqobserver/bqobserver/projections/running"
)

// cancelling lets admins cancel jobs from the API through the jobs API of
// this mode (api; Google's when empty in Google Cloud), recording each
// request through the appender. Without a jobs API (emulators without a
// simulation) the API answers that it cannot cancel.
func (c *RunCmd) cancelling(e *env, b *backends, app *bus.Appender, proj *running.Projection, api string) error {
	if api == "" && b.PubSubMode != modeCloud && b.BigtableMode != modeCloud {
		e.log.Info("cancelling jobs off", "reason", "no BigQuery jobs API in this mode")
		return nil
	}
	opts := []option.ClientOption{}
	if api != "" {
		opts = append(opts, option.WithEndpoint(api))
		if strings.HasPrefix(api, "http://") {
			opts = append(opts, option.WithoutAuthentication())
		}
	}
	svc, err := bq.NewService(e.ctx, opts...)
	if err != nil {
		return fmt.Errorf("connecting to the BigQuery jobs API: %w", err)
	}
	cn, err := cancel.New(bigQueryJobs{svc: svc}, app, e.log, nil)
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

// bigQueryJobs is BigQuery's jobs.cancel as the canceller calls it.
type bigQueryJobs struct {
	svc *bq.Service
}

// Cancel asks BigQuery to cancel the job and returns the state it reports.
// A failure BigQuery may get over (429, 5xx, a timeout, no connection)
// matches events.ErrUnavailable.
func (b bigQueryJobs) Cancel(ctx context.Context, key events.JobKey) (events.State, error) {
	resp, err := b.svc.Jobs.Cancel(key.Project, key.JobID).Location(key.Location).Context(ctx).Do()
	if err != nil {
		if transient(err) {
			err = fmt.Errorf("%w: %w", events.ErrUnavailable, err)
		}
		return "", fmt.Errorf("jobs.cancel %s: %w", key, err)
	}
	if resp.Job == nil || resp.Job.Status == nil {
		return "", nil
	}
	return events.State(resp.Job.Status.State), nil
}

// transient reports whether a failed call may succeed later.
func transient(err error) bool {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code == http.StatusTooManyRequests || ge.Code >= 500
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}
