package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestLoadRuns: each run's load average is read before its emulators
// start and warm up (here the warm-up raises it by 10), and when the
// emulators of a later run fail to start, the runs before it are still
// summarised.
func TestLoadRuns(t *testing.T) {
	for _, tt := range []struct {
		name    string
		failAt  int // the run whose emulators fail to start; 0: none
		runs    []string
		summary string // "" for none
		err     string
	}{
		{"three runs", 0, []string{"Run 1 of 3", "Run 2 of 3", "Run 3 of 3"}, "3 run(s)", ""},
		{"the emulators of run 2 fail", 2, []string{"Run 1 of 3"}, "1 run(s)", "run 2: starting the pubsub emulator: no SDK"},
		{"the emulators of run 1 fail", 1, nil, "", "run 1: starting the pubsub emulator: no SDK"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			load, measured := 1.0, 0
			steps := loadSteps{
				open: func(run int) (*loadEmulators, error) {
					if run == tt.failAt {
						return nil, errors.New("starting the pubsub emulator: no SDK")
					}
					load += 10 // the warm-up
					return &loadEmulators{}, nil
				},
				measure: func(emu *loadEmulators, run int) (*loadResult, error) {
					measured++
					r := &loadResult{loadBefore: load, caughtUp: 1} // what a reading after the warm-up says
					load -= 10
					return r, nil
				},
				release:     func(*loadEmulators) bool { return true },
				loadAverage: func() float64 { return load },
				machine:     func() string { return "a machine" },
			}
			var out bytes.Buffer
			e := &env{ctx: context.Background(), log: slog.New(slog.DiscardHandler), stdout: &out, getenv: func(string) string { return "" }}
			c := &LoadCmd{Rate: 5000, Duration: 2 * time.Minute, Warmup: 30 * time.Second, Runs: 3}
			err := c.runs(e, steps)
			if gotErr := fmt.Sprint(err); tt.err == "" && err != nil || tt.err != "" && gotErr != tt.err {
				t.Errorf("error %v, want %q", err, tt.err)
			}
			report := out.String()
			for _, run := range tt.runs {
				if !strings.Contains(report, "### "+run+":") {
					t.Errorf("the report has no %s:\n%s", run, report)
				}
			}
			if tt.summary == "" {
				if strings.Contains(report, "## bqobserver load") {
					t.Errorf("a summary without a run measured:\n%s", report)
				}
				return
			}
			if !strings.Contains(report, tt.summary+"\n") {
				t.Errorf("the report has no summary of %s:\n%s", tt.summary, report)
			}
			// Each run read 1 before its warm-up made it 11.
			got := spread(t, report, "load average (1 min) before the run and its emulators' warm-up")
			if diff := cmp.Diff(got, []string{"1.00", "1.00", "1.00"}); diff != "" {
				t.Errorf("load average before the runs, min median max (-got +want):\n%s", diff)
			}
			if measured != len(tt.runs) {
				t.Errorf("measured %d runs, want %d", measured, len(tt.runs))
			}
		})
	}
}

// TestLoadCheckWarmup refuses a negative --warmup.
func TestLoadCheckWarmup(t *testing.T) {
	c := LoadCmd{Rate: 5000, Duration: 2 * time.Minute, Warmup: -time.Second, Runs: 1, Interval: 10 * time.Second, Generate: "ahead"}
	if err := c.check(); err == nil || !strings.Contains(err.Error(), "--warmup") {
		t.Errorf("--warmup -1s: %v, want an error naming --warmup", err)
	}
}

// TestFreshnessCountsUnseen: a probe the list never showed is infinitely
// late, so with more than 1% of them unseen the p99 is not measured, and
// with more than half, the p50; the share seen stands beside them.
func TestFreshnessCountsUnseen(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name           string
		probes, unseen int
		p50, p99       time.Duration
		report         []string // the run's paragraph and the summary's p99 cell
	}{
		{"all seen", 100, 0, 200 * time.Millisecond, 200 * time.Millisecond, []string{"p99 200 ms, 100.0% of 100 probes seen in the list", "| freshness p99 (ms) | 200 | 200 | 200 |"}},
		{"1% unseen", 100, 1, 200 * time.Millisecond, 200 * time.Millisecond, []string{"p99 200 ms, 99.0% of 100 probes seen in the list"}},
		{"2% unseen", 100, 2, 200 * time.Millisecond, unseen, []string{"p99 not seen, 98.0% of 100 probes seen in the list", "| freshness p99 (ms) | not seen | not seen | not seen |"}},
		{"a quarter unseen", 100, 25, 200 * time.Millisecond, unseen, []string{"p50 200 ms and p99 not seen, 75.0% of 100 probes seen in the list (each watched 3.0 s or more)"}},
		{"most unseen", 10, 6, unseen, unseen, []string{"p50 not seen and p99 not seen, 40.0% of 10 probes", "| freshness p50 (ms), publish → in the list, an unseen probe counted as infinitely late | not seen |"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pub := &loadPublisher{probes: map[string]time.Time{}, done: map[string]bool{}}
			f := &freshness{lr: &loadRun{pub: pub}, seen: map[string]time.Time{}}
			for i := range tt.probes {
				id := fmt.Sprintf("job-%03d", i)
				pub.probes[id] = now
				if i >= tt.unseen {
					f.seen[id] = now.Add(200 * time.Millisecond)
				}
			}
			got := f.result(now.Add(-time.Second), now.Add(time.Second), now.Add(3*time.Second))
			want := freshnessResult{probes: tt.probes, seen: tt.probes - tt.unseen, p50: tt.p50, p99: tt.p99, watched: 3 * time.Second}
			if diff := cmp.Diff(got, want, cmp.AllowUnexported(freshnessResult{})); diff != "" {
				t.Errorf("freshness (-got +want):\n%s", diff)
			}
			var out bytes.Buffer
			c := &LoadCmd{Rate: 5000, Duration: 2 * time.Minute, Warmup: 30 * time.Second, Runs: 1}
			r := &loadResult{freshness: got, caughtUp: 1}
			writeRun(&out, c, 1, r)
			writeLoadSummary(&out, c, "a machine", []*loadResult{r}, nil)
			for _, w := range tt.report {
				if !strings.Contains(out.String(), w) {
					t.Errorf("the report does not say %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestLoadReportWithheldGoRuntime: the summary names the shell's Go
// runtime settings the service did not get.
func TestLoadReportWithheldGoRuntime(t *testing.T) {
	getenv := func(name string) string {
		return map[string]string{"GOGC": "25", "GODEBUG": "gctrace=1", "HOME": "/root"}[name]
	}
	var out bytes.Buffer
	writeLoadSummary(&out, &LoadCmd{Rate: 5000, Duration: 2 * time.Minute, Runs: 1}, "a machine", []*loadResult{{caughtUp: math.NaN()}}, withheld(getenv))
	if want := "The service ran with its defaults and Go's runtime defaults (the shell's `GOGC=25 GODEBUG=gctrace=1` withheld from it, not from emulators the load command starts)"; !strings.Contains(out.String(), want) {
		t.Errorf("the summary does not say %q:\n%s", want, out.String())
	}
}
