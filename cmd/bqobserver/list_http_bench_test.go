package main

import (
	"context"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/measure"
	"github.com/bqobserver/bqobserver/internal/simulation"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/projections/running"
)

// listJobs is the running population the list latency goal is set for.
const listJobs = 100_000

// BenchmarkListHTTP measures list requests end to end against the
// service's real HTTP server: the service's routes, access gate (the
// default, --auth none), security headers, server settings and response
// compression, over a loopback connection from an HTTP client that reads
// and decompresses the whole body, with 100,000 running jobs of a
// simulated organization while the live feed applies 2,000 events a second.
// It reports p50 and p99 per query, with compression (as browsers ask for
// it) and without:
//
//	go test -run '^$' -bench ListHTTP -benchtime 2000x ./cmd/bqobserver/
func BenchmarkListHTTP(b *testing.B) {
	org, proj := runningOrg(b, listJobs)
	base := serveRoutes(b, proj)
	queries := []struct{ name, query string }{
		{"filtered-searched-sorted", "state=running&location=US&q=marts&sort=-slot_ms&limit=100"},
		{"project-searched", "project=" + org.Projects()[7] + "&q=reporting&sort=-running&limit=100"},
		{"unfiltered-page-of-500", "sort=-running&limit=500"},
	}
	stop := feed(b, org, proj, 2000)
	defer stop()
	for _, gzip := range []bool{true, false} {
		client := &http.Client{Transport: &http.Transport{DisableCompression: !gzip, MaxIdleConnsPerHost: 1}}
		for _, q := range queries {
			b.Run(fmt.Sprintf("%s/gzip=%t", q.name, gzip), func(b *testing.B) {
				var lat []time.Duration
				var bytes int64
				for b.Loop() {
					start := time.Now()
					bytes += get200(b, client, base+"/api/v1/jobs?"+q.query)
					lat = append(lat, time.Since(start))
				}
				b.ReportMetric(float64(measure.Percentile(lat, 50).Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(measure.Percentile(lat, 99).Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(bytes)/float64(b.N), "body-B/op")
			})
		}
	}
}

// get200 requests url and reads the whole (decompressed) body, failing b
// on any status but 200; it returns the body's length.
func get200(b *testing.B, client *http.Client, url string) int64 {
	res, err := client.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	n, err := io.Copy(io.Discard, res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %s, %v", url, res.Status, err)
	}
	return n
}

// serveRoutes serves the service's routes for proj on a loopback port, as
// run does, until b ends, and returns the base URL.
func serveRoutes(b testing.TB, proj *running.Projection) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	api, err := compressed(proj.Handler())
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	c := &RunCmd{}
	c.Auth = "none" // the default: every caller is the admin, on loopback
	gate, err := c.gate(logger, ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	mux, err := c.routes(nil, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), api, gate)
	if err != nil {
		b.Fatal(err)
	}
	srv := newHTTPServer(ln, securityHeaders(mux), logger)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := srv.shutdown(context.Background()); err != nil {
			b.Error(err)
		}
		<-done
	})
	return "http://" + ln.Addr().String()
}

// runningOrg is a projection holding at least n running jobs of a
// simulated organization (300 projects, jobs running 100 times longer than
// usual so that many run at once), and the organization, ready to go on.
func runningOrg(b testing.TB, n int) (*simulation.Org, *running.Projection) {
	const rate = 400
	org, err := simulation.New(simulation.Config{Seed: 3, Projects: 300, Rate: rate, DurationScale: 100,
		Start: time.Now().Add(-time.Hour).UTC(), Delivery: &simulation.Delivery{}})
	if err != nil {
		b.Fatal(err)
	}
	bt := logtest.NewBttest(b)
	log, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table})
	if err != nil {
		b.Fatal(err)
	}
	// Every event is recent enough that the projection never asks the
	// (empty) log about a job it does not know.
	proj, err := running.New(running.Config{TombstoneTTL: 24 * time.Hour}, log, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(proj.Close)
	if err := proj.Rebuild(b.Context()); err != nil {
		b.Fatal(err)
	}
	proj.MarkLive()
	for proj.Len() < n {
		for en := range org.Generate(10 * time.Second) {
			if err := proj.Apply(b.Context(), en.Meant...); err != nil {
				b.Fatal(err)
			}
		}
	}
	return org, proj
}

// feed applies the organization's next events to proj at about rate a
// second until the returned function is called.
func feed(b testing.TB, org *simulation.Org, proj *running.Projection, rate int) func() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		next, stop := iter.Pull(org.Generate(24 * time.Hour))
		defer stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for applied := 0; applied < rate/100; {
				en, ok := next()
				if !ok {
					return
				}
				if err := proj.Apply(ctx, en.Meant...); err != nil && ctx.Err() == nil {
					b.Error(err)
					return
				}
				applied += len(en.Meant)
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}
