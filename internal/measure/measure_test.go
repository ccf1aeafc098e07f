package measure

import (
	"math"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/procfs"
)

// served is a registry with a counter by label, a gauge and a histogram,
// served over HTTP as the service serves its metrics.
func served(t *testing.T) (*prometheus.Registry, *httptest.Server) {
	t.Helper()
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return reg, srv
}

func TestScrape(t *testing.T) {
	reg, srv := served(t)
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "entries_total"}, []string{"intake", "reason"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "oldest_seconds", ConstLabels: prometheus.Labels{"handler": "a"}})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lag_seconds", Buckets: []float64{1, 2, 4}})
	reg.MustRegister(c, g, h)
	c.WithLabelValues("pull", "x").Add(3)
	c.WithLabelValues("pull", "y").Add(4)
	c.WithLabelValues("push", "x").Add(5)
	g.Set(2.5)
	for _, v := range []float64{0.5, 1.5, 3, 10} {
		h.Observe(v)
	}
	m, err := Scrape(t.Context(), srv.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]float64{
		"all":       m.Sum("entries_total"),
		"pull":      m.Sum("entries_total", "intake", "pull"),
		"pull x":    m.Sum("entries_total", "intake", "pull", "reason", "x"),
		"none":      m.Sum("entries_total", "intake", "carrier pigeon"),
		"gauge":     m.Sum("oldest_seconds", "handler", "a"),
		"no family": m.Sum("nothing_total"),
	}
	want := map[string]float64{"all": 12, "pull": 7, "pull x": 3, "none": 0, "gauge": 2.5, "no family": 0}
	if diff := cmp.Diff(sums, want); diff != "" {
		t.Errorf("sums (-got +want):\n%s", diff)
	}
	wantHist := Histogram{Bounds: []float64{1, 2, 4, math.Inf(1)}, Counts: []float64{1, 2, 3, 4}, Count: 4, Sum: 15}
	if diff := cmp.Diff(m.Histogram("lag_seconds"), wantHist); diff != "" {
		t.Errorf("histogram (-got +want):\n%s", diff)
	}
}

func TestQuantile(t *testing.T) {
	h := Histogram{Bounds: []float64{1, 2, 4, math.Inf(1)}, Counts: []float64{10, 30, 40, 40}, Count: 40}
	tests := []struct {
		name string
		h    Histogram
		q    float64
		want float64
	}{
		{"within the first bucket, from 0", h, 0.125, 0.5},
		{"on a bucket's edge", h, 0.25, 1},
		{"within the second bucket", h, 0.5, 1.5},
		{"the top", h, 1, 4},
		{"in the +Inf bucket", Histogram{Bounds: []float64{1, math.Inf(1)}, Counts: []float64{1, 4}, Count: 4}, 0.9, 1},
		{"after subtracting an earlier scrape", h.Sub(Histogram{Bounds: h.Bounds, Counts: []float64{10, 10, 10, 10}, Count: 10}), 0.5, 1.75},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.h.Quantile(tt.q); got != tt.want {
				t.Errorf("Quantile(%g) = %g; want %g", tt.q, got, tt.want)
			}
		})
	}
	if got := (Histogram{}).Quantile(0.5); !math.IsNaN(got) {
		t.Errorf("Quantile of an empty histogram = %g; want NaN", got)
	}
}

func TestSpreadAndPercentile(t *testing.T) {
	spreads := map[string]Spread{
		"odd":  SpreadOf([]float64{3, 1, 2}),
		"even": SpreadOf([]float64{4, 1, 3, 2, math.NaN()}),
		"none": SpreadOf([]float64{math.NaN()}),
		"inf":  SpreadOf([]float64{0.7, math.Inf(1), 2.4}),
	}
	nan := math.NaN()
	want := map[string]Spread{"odd": {1, 2, 3, 3}, "even": {1, 2.5, 4, 4}, "none": {nan, nan, nan, 0}, "inf": {0.7, 2.4, math.Inf(1), 3}}
	if diff := cmp.Diff(spreads, want, cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("spreads (-got +want):\n%s", diff)
	}
	ds := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	got := []time.Duration{Percentile(ds, 50), Percentile(ds, 99), Percentile(ds, 0), Percentile(nil, 50)}
	if diff := cmp.Diff(got, []time.Duration{5, 10, 1, -1}); diff != "" {
		t.Errorf("percentiles 50, 99, 0 and of nothing (-got +want):\n%s", diff)
	}
}

func TestProcessUsage(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	before, err := MachineCPU()
	if err != nil {
		t.Fatal(err)
	}
	// Spend some CPU time, which /proc counts in 10ms ticks.
	for start := time.Now(); time.Since(start) < 100*time.Millisecond; {
	}
	after, err := MachineCPU()
	if err != nil {
		t.Fatal(err)
	}
	// This process was busy for 100ms on one of the machine's CPUs.
	// The shares are of float seconds: 1 may come out a hair above.
	if busy, steal := after.Shares(before); !(busy > 0 && busy <= 1+1e-9 && steal >= 0 && steal < 1) {
		t.Errorf("the machine's shares busy and steal while this test spun = %g, %g; want busy in (0, 1] and steal in [0, 1)", busy, steal)
	}
	u, err := ProcessUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.RSS <= 0 || u.CPU <= 0 {
		t.Errorf("usage of this test process = %+v; want positive CPU time and RSS", u)
	}
	peak, err := PeakRSS(os.Getpid())
	if err != nil || peak < u.RSS {
		t.Errorf("peak RSS of this test process = %d, %v; want at least its RSS %d", peak, err, u.RSS)
	}
	if _, err := PeakRSS(-1); err == nil {
		t.Error("PeakRSS of no process succeeded")
	}
	if _, err := ProcessUsage(-1); err == nil {
		t.Error("ProcessUsage of no process succeeded")
	}
}

func TestMachineShares(t *testing.T) {
	from := machineOf(procfs.CPUStat{User: 100, Nice: 1, System: 20, Idle: 500, Iowait: 10, IRQ: 2, SoftIRQ: 3, Steal: 4, Guest: 50})
	// Over 10 s of two CPUs: 8 s running (guest time is part of user
	// time), 1 s stolen, 11 s idle or waiting for I/O.
	to := machineOf(procfs.CPUStat{User: 106, Nice: 1, System: 21, Idle: 510, Iowait: 11, IRQ: 2.5, SoftIRQ: 3.5, Steal: 5, Guest: 55})
	busy, steal := to.Shares(from)
	if math.Abs(busy-0.4) > 1e-9 || math.Abs(steal-0.05) > 1e-9 {
		t.Errorf("shares = busy %g, steal %g; want 0.4 and 0.05", busy, steal)
	}
	if busy, steal := from.Shares(from); !math.IsNaN(busy) || !math.IsNaN(steal) {
		t.Errorf("shares of no time = %g, %g; want NaN", busy, steal)
	}
	if busy, _ := (Machine{}).Shares(from); !math.IsNaN(busy) {
		t.Errorf("shares against a reading not taken = %g; want NaN", busy)
	}
}

// TestCeiling: no observation was above the bound of the highest bucket
// that holds one, so a maximum taken from it is never below a quantile.
func TestCeiling(t *testing.T) {
	bounds := []float64{1, 10, 100, math.Inf(1)}
	for _, tt := range []struct {
		name string
		h    Histogram
		want float64
	}{
		{"the 10 s bucket", Histogram{Bounds: bounds, Counts: []float64{90, 100, 100, 100}, Count: 100}, 10},
		{"the first bucket", Histogram{Bounds: bounds, Counts: []float64{5, 5, 5, 5}, Count: 5}, 1},
		{"the +Inf bucket", Histogram{Bounds: bounds, Counts: []float64{5, 5, 5, 6}, Count: 6}, math.Inf(1)},
		{"no +Inf bucket exposed", Histogram{Bounds: bounds[:3], Counts: []float64{5, 5, 5}, Count: 6}, math.Inf(1)},
		{"empty", Histogram{Bounds: bounds, Counts: []float64{0, 0, 0, 0}}, math.NaN()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.h.Ceiling()
			if !cmp.Equal(got, tt.want, cmpopts.EquateNaNs()) {
				t.Errorf("Ceiling() = %g; want %g", got, tt.want)
			}
			if q := tt.h.Quantile(0.99); q > got {
				t.Errorf("Ceiling() = %g is below the p99 %g", got, q)
			}
		})
	}
}

// TestMachineOther: the machine's busy time beyond the measured
// processes' is the share of everything else.
func TestMachineOther(t *testing.T) {
	from := Machine{Busy: 100, Total: 400}
	to := Machine{Busy: 116, Total: 420} // 20 s of CPUs, 16 busy
	if got := to.Other(from, 12*time.Second); math.Abs(got-0.2) > 1e-9 {
		t.Errorf("Other with 12 s measured = %g; want 0.2", got)
	}
	if got := to.Other(from, 17*time.Second); got != 0 {
		t.Errorf("Other with more measured than busy = %g; want 0", got)
	}
	if got := from.Other(from, 0); !math.IsNaN(got) {
		t.Errorf("Other over no time = %g; want NaN", got)
	}
}
