package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/internal/problem"
	"github.com/bqobserver/bqobserver/internal/simulation"
	"github.com/bqobserver/bqobserver/projections/access"
)

// simulationPath is where the embedded mode serves the simulated BigQuery
// jobs API on the service's own HTTP server; clients use the endpoint
// http://ADDR/simulation/bigquery/v2/.
const simulationPath = "/simulation"

// embeddedSimulation is the simulated organization of the embedded mode: it
// publishes its audit entries to the in-process audit topic in real time,
// and serves its jobs API beside the product's.
type embeddedSimulation struct {
	org   *simulation.Org
	sink  *topicSink
	steps []rateStep
}

// rateStep is a change of the simulated rate, after a time from the start.
type rateStep struct {
	after time.Duration
	rate  float64
}

// parseRateSteps reads --simulate-rate-steps: AFTER=RATE, in any order.
func parseRateSteps(steps []string) ([]rateStep, error) {
	var out []rateStep
	for _, s := range steps {
		after, rate, ok := strings.Cut(s, "=")
		d, derr := time.ParseDuration(after)
		r, rerr := strconv.ParseFloat(rate, 64)
		if !ok || derr != nil || rerr != nil || d < 0 || !(r > 0) {
			return nil, fmt.Errorf("--simulate-rate-steps: %q is not AFTER=RATE, a duration of 0 or more and a rate above 0 (10m=50)", s)
		}
		out = append(out, rateStep{after: d, rate: r})
	}
	slices.SortStableFunc(out, func(a, b rateStep) int { return cmp.Compare(a.after, b.after) })
	return out, nil
}

func (c *RunCmd) newSimulation(b *backends, g *Globals, reg prometheus.Registerer, logger *slog.Logger) (*embeddedSimulation, error) {
	if !c.Simulate || b.PubSubMode != modeEmbedded {
		return nil, nil
	}
	steps, err := parseRateSteps(c.SimulateRateSteps)
	if err != nil {
		return nil, err
	}
	org, err := simulation.New(simulation.Config{Seed: c.SimulateSeed, Projects: c.SimulateProjects, Rate: c.SimulateRate,
		Retention: c.simulationRetention(g, b)})
	if err != nil {
		return nil, fmt.Errorf("configuring the simulated organization: %w", err)
	}
	for _, st := range steps {
		if err := org.SetRate(st.rate); err != nil { // checks the rate before the start
			return nil, fmt.Errorf("--simulate-rate-steps: %w", err)
		}
	}
	if err := org.SetRate(c.SimulateRate); err != nil {
		return nil, fmt.Errorf("configuring the simulated organization: %w", err)
	}
	entries := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "bqobserver", Subsystem: "simulation", Name: "entries_total",
		Help: "Audit entries the embedded simulated organization handed to the in-process audit topic, redeliveries included: what ingest should settle.",
	}, func() float64 { return float64(org.Stats().Entries) })
	behind := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "bqobserver", Subsystem: "simulation", Name: "behind_seconds",
		Help: "How far the embedded simulated organization is behind real time: it holds itself back while ingest cannot take its entries as fast as it makes them, and catches up when ingest can. Counted in the list's lag.",
	}, func() float64 { return org.Behind().Seconds() })
	if err := errors.Join(reg.Register(entries), reg.Register(behind)); err != nil {
		return nil, err
	}
	return &embeddedSimulation{org: org, sink: newTopicSink(b.PubSub, g.AuditTopic, logger), steps: steps}, nil
}

// behind is how far the simulation is behind real time; nil without a
// simulation.
func (s *embeddedSimulation) behind() func() time.Duration {
	if s == nil {
		return nil
	}
	return s.org.Behind
}

// mount serves the jobs API under simulationPath.
//
// Enrichment and cancel call it from this process, without credentials.
// When users are authenticated (local is false) it answers only callers
// on this machine: its jobs are made up, but they may be cancelled through
// it, and nothing else the service serves is open to anyone.
func (s *embeddedSimulation) mount(mux *http.ServeMux, local bool) {
	if s == nil {
		return
	}
	h := http.StripPrefix(simulationPath, s.org.JobsAPI())
	if !local {
		h = fromThisMachine(h)
	}
	mux.Handle(simulationPath+"/", h)
}

// fromThisMachine refuses with 403 a request whose peer is not this
// machine: neither on a loopback address nor on the address it called
// (the service calling itself on the address it listens on).
func fromThisMachine(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !access.IsLoopbackAddr(r.RemoteAddr) && !sameHost(r) {
			problem.Write(w, r, http.StatusForbidden, "the simulated jobs API answers only this machine when users are authenticated")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// sameHost reports whether the request's peer has the address the request
// came in on.
func sameHost(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	in, err := netip.ParseAddrPort(local.String())
	return err == nil && in.Addr().Unmap() == peer.Addr().Unmap()
}

// run publishes the organization's entries until ctx ends, then waits
// for the publishes still outstanding until stop's context ends.
func (s *embeddedSimulation) run(ctx context.Context, stop func() context.Context, log *slog.Logger) error {
	if s == nil {
		return nil
	}
	start := time.Now()
	for _, st := range s.steps {
		t := time.AfterFunc(time.Until(start.Add(st.after)), func() {
			if err := s.org.SetRate(st.rate); err == nil {
				log.Info("simulated rate changed", "jobs_per_second", st.rate, "after", st.after.String())
			}
		})
		defer t.Stop()
	}
	err := s.org.Run(ctx, s.sink.send)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	// Entries still unpublished when the shutdown's budget ends are
	// simulated ones: a stop that leaves some is no failure of the service.
	if cerr := s.sink.close(stop()); cerr != nil {
		log.Warn("the simulation stopped with entries it could not publish", "error", cerr.Error())
	}
	return err
}
