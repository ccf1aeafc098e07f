package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bqobserver/bqobserver/internal/measure"
)

// TestLoadSettle: a steady run that did not catch up within settleWithin,
// or was cut short while waiting, says so and is flagged; it is never
// summarised as having caught up at once.
func TestLoadSettle(t *testing.T) {
	to := time.Date(2026, 1, 1, 0, 2, 0, 0, time.UTC)
	notSettled := fmt.Errorf("%w: it settled 590,000 deliveries of 600,000 entries within 2m0s", errNotSettled)
	for _, tt := range []struct {
		name      string
		at        time.Time
		err       error
		caughtUp  float64
		until     time.Time
		problem   string // a word of the flag; "" for none
		sentence  string // what the run's paragraph says
		summaries string // the summary's cell
	}{
		{"caught up", to.Add(700 * time.Millisecond), nil, 0.7, to.Add(700 * time.Millisecond), "", "caught up 0.7 s after publishing stopped", "0.7"},
		{"caught up before the last confirmation", to.Add(-300 * time.Millisecond), nil, 0, to, "", "caught up 0.0 s after publishing stopped", "0.0"},
		{"not within the bound", to.Add(2 * time.Minute), notSettled, math.Inf(1), to.Add(2 * time.Minute), "did not catch up within 120 s", "did not catch up within 120 s", "> 120"},
		{"cut short", to.Add(5 * time.Second), context.Canceled, math.NaN(), to.Add(5 * time.Second), "was cut short", "not known whether it caught up", "–"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &loadResult{to: to}
			r.settle(tt.at, tt.err)
			if !cmp.Equal(r.caughtUp, tt.caughtUp, cmpopts.EquateNaNs(), cmpopts.EquateApprox(0, 1e-9)) || !r.until.Equal(tt.until) {
				t.Errorf("caught up %g s, lag measured until %s; want %g s, until %s", r.caughtUp, r.until, tt.caughtUp, tt.until)
			}
			if flagged := strings.Join(r.problems, "; "); tt.problem == "" && flagged != "" || !strings.Contains(flagged, tt.problem) {
				t.Errorf("flagged %q, want %q", flagged, tt.problem)
			}
			var out bytes.Buffer
			writeRun(&out, &LoadCmd{Rate: 5000, Duration: 2 * time.Minute, Warmup: 30 * time.Second, Runs: 1}, 1, r)
			if !strings.Contains(out.String(), tt.sentence) {
				t.Errorf("the run's report does not say %q:\n%s", tt.sentence, out.String())
			}
			if tt.problem != "" && !strings.Contains(out.String(), "**Flagged: this run "+tt.problem) {
				t.Errorf("the run's report does not flag it with %q:\n%s", tt.problem, out.String())
			}
			out.Reset()
			writeLoadSummary(&out, &LoadCmd{Rate: 5000, Duration: 2 * time.Minute, Warmup: 30 * time.Second, Runs: 1}, "a machine", []*loadResult{r}, nil)
			if got := spread(t, out.String(), "caught up after publishing stopped (s)"); got[1] != tt.summaries {
				t.Errorf("summary's median %q, want %q", got[1], tt.summaries)
			}
		})
	}
}

// TestLoadSummaryCaughtUp: of three runs, one that did not catch up is the
// slowest, not the fastest, and the summary flags it.
func TestLoadSummaryCaughtUp(t *testing.T) {
	to := time.Date(2026, 1, 1, 0, 2, 0, 0, time.UTC)
	var results []*loadResult
	for _, at := range []struct {
		after time.Duration
		err   error
	}{{700 * time.Millisecond, nil}, {2400 * time.Millisecond, nil}, {2 * time.Minute, fmt.Errorf("%w: …", errNotSettled)}} {
		r := &loadResult{to: to}
		r.settle(to.Add(at.after), at.err)
		results = append(results, r)
	}
	var out bytes.Buffer
	writeLoadSummary(&out, &LoadCmd{Rate: 5000, Duration: 2 * time.Minute, Warmup: 30 * time.Second, Runs: 3}, "a machine", results, nil)
	if diff := cmp.Diff(spread(t, out.String(), "caught up after publishing stopped (s)"), []string{"0.7", "2.4", "> 120"}); diff != "" {
		t.Errorf("caught up, min median max (-got +want):\n%s", diff)
	}
	if !strings.Contains(out.String(), "Flagged: run 3 did not catch up within 120 s") {
		t.Errorf("the summary does not flag run 3:\n%s", out.String())
	}
}

// TestLoadResultLagUntilCaughtUp: a steady run that falls behind settles
// its last entries, the slowest, after publishing stops; its lag and
// memory include them, its rates stay those of the publishing.
func TestLoadResultLagUntilCaughtUp(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	bounds := []float64{0.5, 1, 5, 10, math.Inf(1)}
	var samples []loadSample
	// 0..10 s: 5,000/s published, 4,770/s settled, all within 1 s; 10..12 s:
	// the 2,300 left settle, each 5-10 s after publication, and the
	// service's memory grows by 100 MB.
	for i := range 13 {
		n, extra := float64(min(i, 10)), float64(max(i-10, 0))*1150
		samples = append(samples, loadSample{at: start.Add(time.Duration(i) * time.Second), published: 5000 * n,
			received: 4770*n + extra, appended: 4770*n + extra,
			ingestLag: measure.Histogram{Bounds: bounds, Counts: []float64{4000 * n, 4770 * n, 4770 * n, 4770*n + extra, 4770*n + extra}, Count: 4770*n + extra},
			service:   measure.Usage{RSS: int64(100e6 + 50e6*extra/1150)}})
	}
	r := &loadResult{start: start, from: start, to: start.Add(10 * time.Second)}
	r.settle(start.Add(12*time.Second), nil)
	r.compute(samples, emulatorGC{}, 5*time.Second)
	got := []float64{r.window.Seconds(), r.inRate, r.appendedRate, r.ingestP99, r.ingestMax, r.rssMax, r.caughtUp}
	want := []float64{10, 5000, 4770,
		samples[12].ingestLag.Sub(samples[0].ingestLag).Quantile(0.99), // of every entry published in the window
		10, 200e6, 2}
	if diff := cmp.Diff(got, want, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("window, rates, lag p99 and max, RSS max, caught up (-got +want):\n%s", diff)
	}
	if r.ingestP99 <= 5 {
		t.Errorf("ingest lag p99 %g s leaves out the entries that waited 5-10 s", r.ingestP99)
	}
}

// TestLoadResultLagMaxNotBelowP99: the oldest-unprocessed gauge, sampled
// once a second, misses a burst between samples; the lag's max is then the
// bound of the histogram's highest non-empty bucket, never below its p99.
func TestLoadResultLagMaxNotBelowP99(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	bounds := []float64{1, 10, 100, math.Inf(1)}
	var samples []loadSample
	for i := range 11 {
		n := float64(i)
		samples = append(samples, loadSample{at: start.Add(time.Duration(i) * time.Second), received: 100 * n,
			ingestOldest: 0.5, feedOldest: 12, // the feed's gauge saw more than its buckets show
			ingestLag: measure.Histogram{Bounds: bounds, Counts: []float64{90 * n, 100 * n, 100 * n, 100 * n}, Count: 100 * n},
			feedLag:   measure.Histogram{Bounds: bounds, Counts: []float64{100 * n, 100 * n, 100 * n, 100 * n}, Count: 100 * n}})
	}
	r := &loadResult{start: start, from: start, to: start.Add(10 * time.Second)}
	r.compute(samples, emulatorGC{}, 5*time.Second)
	if diff := cmp.Diff([]float64{r.ingestMax, r.feedMax}, []float64{10, 12}); diff != "" {
		t.Errorf("ingest and feed lag max (-got +want):\n%s", diff)
	}
	if r.ingestMax < r.ingestP99 || r.feedMax < r.feedP99 {
		t.Errorf("lag max below p99: ingest %g < %g or feed %g < %g", r.ingestMax, r.ingestP99, r.feedMax, r.feedP99)
	}
}

// TestLoadResultTooFewSamples: a window with fewer than two samples
// measures nothing: its figures are NaN, not 0, the run is flagged, and the
// summary's figures are over the runs that measured them, saying so.
func TestLoadResultTooFewSamples(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	samples := []loadSample{{at: start}, {at: start.Add(40 * time.Second)}}
	bad := &loadResult{start: start, from: start.Add(30 * time.Second), to: start.Add(35 * time.Second), sampleFailures: 5}
	bad.compute(samples, emulatorGC{}, 10*time.Second)
	for name, v := range map[string]float64{"appended/s": bad.appendedRate, "ingest lag p99": bad.ingestP99, "ingest lag max": bad.ingestMax,
		"service CPU": bad.cpuService, "RSS max": bad.rssMax, "machine busy": bad.machineBusy, "dead-lettered": bad.deadLettered} {
		if !math.IsNaN(v) {
			t.Errorf("%s of a window without samples = %g, want NaN", name, v)
		}
	}
	if len(bad.problems) != 1 || !strings.Contains(bad.problems[0], "had 0 samples in its window (5 failed in the run)") {
		t.Errorf("flagged %q, want the window's samples", bad.problems)
	}
	var out bytes.Buffer
	c := &LoadCmd{Rate: 5000, Duration: time.Minute, Warmup: 30 * time.Second, Runs: 3}
	good := func(appended float64) *loadResult {
		return &loadResult{appendedRate: appended, ingestP99: 0.5, caughtUp: 1}
	}
	writeLoadSummary(&out, c, "a machine", []*loadResult{good(4900), bad, good(5000)}, nil)
	if diff := cmp.Diff(spread(t, out.String(), "appended/s (of 2 runs of 3)"), []string{"4,900", "4,950", "5,000"}); diff != "" {
		t.Errorf("appended/s over the two runs that measured it (-got +want):\n%s", diff)
	}
	if !strings.Contains(out.String(), "Flagged: run 2 had 0 samples in its window") {
		t.Errorf("the summary does not flag run 2:\n%s", out.String())
	}
	// Every run measured: no count.
	out.Reset()
	writeLoadSummary(&out, c, "a machine", []*loadResult{good(4900), good(5000)}, nil)
	spread(t, out.String(), "appended/s")
}
