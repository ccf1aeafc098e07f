package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigtable"
	"cloud.google.com/go/pubsub/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/internal/measure"
	"github.com/bqobserver/bqobserver/internal/pstest"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/projections/running"
)

// The backlog BenchmarkRestartAfterBacklog drains before the restart, at
// the load command's rate.
const (
	restartBacklog = 300_000
	restartRate    = 5000
	// restartInFlight is how many entries are appended at once: as many as
	// the service's ingest holds (--max-outstanding-messages), in groups of
	// restartGroup entries a call.
	restartInFlight = 1000
	restartGroup    = 50
)

// BenchmarkRestartAfterBacklog measures the service's restart after it
// drained a backlog: 300,000 audit entries of the load command's simulated
// organization (seed 1, accumulated at 5,000 entries/s) have their events
// appended through the appender, 1,000 entries at a time as ingest's
// handlers hold them (in calls of 50 entries), and applied by a running-jobs
// projection that runs as in the service and prunes the finished jobs it
// finds in the log's open-jobs index once a second; the projection is
// stopped as SIGTERM stops it, without a last prune. Then the real service
// (run, with its defaults) starts on that log, and the time from its start
// to /readyz 200 is measured: the first rebuild on that log, never a warm
// one. Every iteration drains the backlog into a project and table of its
// own, so run it with -benchtime 1x and -count for several restarts. It
// reports the seconds to ready, the open-jobs index entries the rebuild
// read, the running jobs it listed, the finished ones it found there and
// pruned, and the rebuild's duration (the service's own metrics).
//
// The audit entries skip Pub/Sub and the decoder (their decoded events are
// the simulation's own): through them the backlog takes more than ten times
// longer to build in this one process. The restart is the service's. With
// bttest in this process, its log's heap of several GB makes a garbage
// collection that falls within the rebuild cost one to two CPU seconds.
//
// The log is an in-process bttest, or the Bigtable emulator when
// BIGTABLE_EMULATOR_HOST is set; Pub/Sub the in-process one the embedded
// mode runs, or the emulator when PUBSUB_EMULATOR_HOST is set:
//
//	go test -run '^$' -bench RestartAfterBacklog -benchtime 1x -count 3 -timeout 60m ./cmd/bqobserver/
func BenchmarkRestartAfterBacklog(b *testing.B) {
	restartBackends(b)
	var sum restartResult
	for i := range b.N {
		b.StopTimer()
		project := fmt.Sprintf("restart-%d-%d", time.Now().UnixNano(), i)
		buildBacklog(b, project)
		b.StartTimer()
		x := restartOnce(b, project)
		dropLog(b, project)
		b.Logf("restart %d: ready after %s; the rebuild read %g index entries, listed %g running jobs, pruned %g finished ones, in %.2f s",
			i+1, x.readyAfter.Round(time.Millisecond), x.indexEntries, x.running, x.finished, x.rebuildSeconds)
		sum.readyAfter += x.readyAfter
		sum.indexEntries += x.indexEntries
		sum.running += x.running
		sum.finished += x.finished
		sum.rebuildSeconds += x.rebuildSeconds
	}
	n := float64(b.N)
	b.ReportMetric(sum.readyAfter.Seconds()/n, "ready-s")
	b.ReportMetric(sum.indexEntries/n, "index-entries")
	b.ReportMetric(sum.running/n, "running-jobs")
	b.ReportMetric(sum.finished/n, "finished-pruned")
	b.ReportMetric(sum.rebuildSeconds/n, "rebuild-s")
}

// restartBackends points the service at the emulators of the environment,
// or at an in-process Pub/Sub and bttest that outlive each of its runs,
// and keeps it from writing a BigQuery history.
func restartBackends(b *testing.B) {
	if os.Getenv("PUBSUB_EMULATOR_HOST") == "" {
		srv := pstest.NewServer()
		b.Cleanup(func() { srv.Close() })
		b.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
	}
	if os.Getenv("BIGTABLE_EMULATOR_HOST") == "" {
		// As large requests as the embedded mode's in-process Bigtable.
		b.Setenv("BIGTABLE_EMULATOR_HOST", logtest.StartBttest(b, grpc.MaxRecvMsgSize(256<<20)))
	}
	b.Setenv("BIGQUERY_EMULATOR_HOST", "")
	b.Setenv("BIGQUERY_STORAGE_EMULATOR_HOST", "")
}

// buildBacklog creates project's topics, subscriptions and table with
// setup, then appends the backlog's events to its log through an appender
// while a projection applies them and prunes, as the service's ingest and
// live feed do.
func buildBacklog(b *testing.B, project string) {
	ctx := b.Context()
	if _, err := backlogGroups(); err != nil {
		b.Fatal(err)
	}
	if code := runContext(ctx, []string{"setup", "--project", project}, strings.NewReader(""), io.Discard, io.Discard, os.Getenv); code != 0 {
		b.Fatalf("setup --project %s exited with %d", project, code)
	}
	log, app := openAppender(b, project)
	proj, err := running.New(running.Config{}, log, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := proj.Rebuild(ctx); err != nil {
		b.Fatal(err)
	}
	feeding, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = proj.Run(feeding) })
	start := time.Now()
	appendBacklog(b, app, proj)
	stop() // as SIGTERM ends the service: the prunes still pending are lost
	wg.Wait()
	b.Logf("appended and applied the events of %d entries in %s; %d jobs running", restartBacklog, time.Since(start).Round(time.Second), proj.Len())
}

// openAppender opens project's event log, as the service names it, and an
// appender onto it and the events topic.
func openAppender(b *testing.B, project string) (*events.Log, *bus.Appender) {
	ctx := b.Context()
	bt, err := bigtable.NewClientWithConfig(ctx, project, localInstance,
		bigtable.ClientConfig{MetricsProvider: bigtable.NoopMetricsProvider{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bt.Close() })
	log, err := events.NewLog(bt, events.LogConfig{Table: "bqobserver-events"})
	if err != nil {
		b.Fatal(err)
	}
	ps, err := pubsub.NewClient(ctx, project)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ps.Close() })
	app, err := bus.NewAppender(bus.AppenderConfig{Topic: "bqobserver-events"}, log, ps, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { app.Close(context.Background()) })
	return log, app
}

// backlogGroups are the events of the backlog's entries, restartGroup
// entries a group, made once for every run of the benchmark in the process.
var backlogGroups = sync.OnceValues(func() ([][]events.Event, error) {
	entries, err := backlog(1, restartBacklog, restartRate)
	if err != nil {
		return nil, err
	}
	var groups [][]events.Event
	var group []events.Event
	n := 0
	for en := range entries {
		group = append(group, en.Meant...)
		if n++; n%restartGroup == 0 {
			groups, group = append(groups, group), nil
		}
	}
	return append(groups, group), nil
})

// appendBacklog appends the events of the backlog's entries through app,
// restartInFlight entries at a time in groups of restartGroup, and applies
// each group's events to proj once they are appended, as the live feed
// does.
func appendBacklog(b *testing.B, app *bus.Appender, proj *running.Projection) {
	groups, err := backlogGroups()
	if err != nil {
		b.Fatal(err)
	}
	in := make(chan []events.Event, restartInFlight/restartGroup)
	var wg sync.WaitGroup
	for range restartInFlight / restartGroup {
		wg.Go(func() {
			for evs := range in {
				if err := app.Append(b.Context(), evs); err != nil {
					b.Error(err)
					continue
				}
				if err := proj.Apply(b.Context(), evs...); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for _, g := range groups {
		in <- g
	}
	close(in)
	wg.Wait()
}

// dropLog deletes project's table, so that the next iteration's backlog
// does not add to the memory of an in-process Bigtable.
func dropLog(b *testing.B, project string) {
	admin, err := bigtable.NewAdminClient(b.Context(), project, localInstance)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	if err := admin.DeleteTable(b.Context(), "bqobserver-events"); err != nil {
		b.Fatal(err)
	}
}

// restartLabels mark the restarted service's goroutines, and the ones they
// start, in a CPU profile: with -cpuprofile, go tool pprof
// -tagfocus=bqobserver=restart shows what the restart alone costs, apart
// from building the backlog.
var restartLabels = pprof.Labels("bqobserver", "restart")

// restartOnce starts the service on project's log, waits until it is
// ready, reads its rebuild's metrics and stops it.
func restartOnce(b *testing.B, project string) restartResult {
	start := time.Now()
	var base string
	var stop func() int
	pprof.Do(b.Context(), restartLabels, func(context.Context) {
		base, stop = startService(b, "--project", project)
	})
	defer func() {
		if code := stop(); code != 0 {
			b.Errorf("the restarted service exited with %d", code)
		}
	}()
	client := &http.Client{Timeout: 10 * time.Second}
	svc := &loadService{base: base, done: make(chan struct{})}
	ready, err := svc.waitReady(b.Context(), client)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	x := restartResult{readyAfter: ready.Sub(start)}
	m, err := measure.Scrape(b.Context(), client, base+"/metrics")
	if err != nil {
		b.Fatal(err)
	}
	x.fromMetrics(m)
	return x
}
