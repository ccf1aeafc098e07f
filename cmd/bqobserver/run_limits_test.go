package main

import (
	"bytes"
	"math"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/events/bus"
)

func TestLogRetention(t *testing.T) {
	const flag = 400 * 24 * time.Hour
	for _, tc := range []struct {
		name     string
		set      time.Duration // --embedded-retention
		bigtable string
		rate     float64
		want     time.Duration
	}{
		{name: "emulator keeps --retention", bigtable: modeEmulator, rate: 50, want: flag},
		{name: "cloud keeps --retention", bigtable: modeCloud, want: flag},
		{name: "embedded without simulation", bigtable: modeEmbedded, want: time.Hour},
		{name: "embedded at the default rate", bigtable: modeEmbedded, rate: 1, want: 33*time.Minute + 20*time.Second},
		{name: "embedded at half a job a second", bigtable: modeEmbedded, rate: 0.5, want: time.Hour},
		{name: "embedded at 50 jobs/s", bigtable: modeEmbedded, rate: 50, want: 40 * time.Second},
		{name: "embedded at 500 jobs/s", bigtable: modeEmbedded, rate: 500, want: 4 * time.Second},
		{name: "embedded at the simulation's ceiling", bigtable: modeEmbedded, rate: 100000, want: time.Second},
		{name: "embedded, set", set: 15 * time.Minute, bigtable: modeEmbedded, rate: 50, want: 15 * time.Minute},
		{name: "set, not embedded", set: 15 * time.Minute, bigtable: modeEmulator, want: flag},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := LimitFlags{EmbeddedRetention: tc.set}
			if got := f.logRetention(flag, tc.bigtable, tc.rate); got != tc.want {
				t.Errorf("logRetention = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestLogRetentionRateSteps: the embedded window holds the jobs of the
// busiest simulated rate, steps included, within the bound.
func TestLogRetentionRateSteps(t *testing.T) {
	b := &backends{PubSubMode: modeEmbedded, BigtableMode: modeEmbedded}
	for _, tc := range []struct {
		rate  float64
		steps []string
		want  time.Duration
	}{
		{rate: 1, want: 33*time.Minute + 20*time.Second},
		{rate: 1, steps: []string{"1m=50"}, want: 40 * time.Second},
		{rate: 500, steps: []string{"10m=50"}, want: 4 * time.Second},
	} {
		c := &RunCmd{Simulate: true, SimulateRate: tc.rate, SimulateRateSteps: tc.steps}
		if got := c.logRetention(&Globals{Retention: 400 * 24 * time.Hour}, b); got != tc.want {
			t.Errorf("--simulate-rate %v --simulate-rate-steps %v: window %s, want %s", tc.rate, tc.steps, got, tc.want)
		}
	}
}

func TestDropLines(t *testing.T) {
	var out bytes.Buffer
	d := dropLines{w: &out, prefix: []byte("bttest: GC MaxAge(")}
	for _, line := range []string{
		"2026/01/02 15:04:05 bttest: GC MaxAge(seconds:100) deleted 1 cells.\n",
		"2026/01/02 15:04:05 something else\n",
	} {
		if n, err := d.Write([]byte(line)); n != len(line) || err != nil {
			t.Errorf("Write(%q) = %d, %v; want %d, nil", line, n, err, len(line))
		}
	}
	if got, want := out.String(), "2026/01/02 15:04:05 something else\n"; got != want {
		t.Errorf("passed on %q, want %q", got, want)
	}
}

// TestPprof: the profiles are served only with --pprof, and then only to
// admins, authenticated like the API's callers.
func TestPprof(t *testing.T) {
	const path = "/debug/pprof/cmdline"
	t.Run("off by default", func(t *testing.T) {
		t.Setenv("PUBSUB_EMULATOR_HOST", "")
		t.Setenv("BIGTABLE_EMULATOR_HOST", "")
		base, stop := startService(t, "--no-simulate")
		defer stop()
		if status, _, body := call(t, "GET", base+path, ""); status != http.StatusNotFound {
			t.Errorf("GET %s without --pprof: %d %s, want 404", path, status, body)
		}
	})
	t.Run("on, behind authentication", func(t *testing.T) {
		a := runAuthenticated(t, "--pprof")
		got := map[string]int{}
		got["nobody"], _, _ = call(t, "GET", a.base+path, "")
		got["viewer"], _, _ = call(t, "GET", a.base+path, "", "X-Goog-Iap-Jwt-Assertion", a.iap(t, viewerEmail))
		got["admin"], _, _ = call(t, "GET", a.base+path, "", "X-Goog-Iap-Jwt-Assertion", a.iap(t, adminEmail))
		want := map[string]int{"nobody": http.StatusUnauthorized, "viewer": http.StatusForbidden, "admin": http.StatusOK}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GET %s with --pprof (-want +got):\n%s", path, diff)
		}
	})
}

// TestEmbeddedMemoryLimit sets the embedded mode's soft memory limit from
// its flag, leaves GOMEMLIMIT alone, and sets none when the flag is 0.
func TestEmbeddedMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "GOMEMLIMIT" {
				return v
			}
			return ""
		}
	}
	for _, tt := range []struct {
		name    string
		mib     int
		gomem   string
		runtime int64 // the limit in force before
		want    int64
	}{
		{"the flag", 320, "", math.MaxInt64, 320 << 20},
		{"no limit", 0, "", math.MaxInt64, math.MaxInt64},
		{"GOMEMLIMIT wins", 320, "1GiB", 1 << 30, 1 << 30},
	} {
		debug.SetMemoryLimit(tt.runtime)
		f := LimitFlags{EmbeddedMemoryMiB: tt.mib}
		if got := f.setEmbeddedMemoryLimit(env(tt.gomem)); got != tt.want {
			t.Errorf("%s: limit %d, want %d", tt.name, got, tt.want)
		}
		if got := debug.SetMemoryLimit(-1); got != tt.want {
			t.Errorf("%s: runtime's limit %d, want %d", tt.name, got, tt.want)
		}
	}
}

// The embedded mode's GOGC is its flag's unless GOGC is set; 0 leaves Go's
// pacing alone.
func TestEmbeddedGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "GOGC" {
				return v
			}
			return ""
		}
	}
	for _, tt := range []struct {
		name    string
		flag    int
		gogc    string
		runtime int // the GOGC in force before
		want    int
	}{
		{"the flag", 40, "", 100, 40},
		{"Go's pacing", 0, "", 100, 100},
		{"GOGC wins", 40, "80", 80, 80},
	} {
		debug.SetGCPercent(tt.runtime)
		f := LimitFlags{EmbeddedGOGC: tt.flag}
		if got := f.setEmbeddedGOGC(env(tt.gogc)); got != tt.want {
			t.Errorf("%s: GOGC %d, want %d", tt.name, got, tt.want)
		}
		if got := debug.SetGCPercent(100); got != tt.want {
			t.Errorf("%s: runtime's GOGC %d, want %d", tt.name, got, tt.want)
		}
	}
}

// --simulate-rate-steps reads AFTER=RATE steps, sorted by AFTER, and
// refuses anything else.
func TestParseRateSteps(t *testing.T) {
	got, err := parseRateSteps([]string{"10m=50", "0s=500", "1h30m=0.5"})
	if err != nil {
		t.Fatal(err)
	}
	want := []rateStep{{0, 500}, {10 * time.Minute, 50}, {90 * time.Minute, 0.5}}
	if !slices.Equal(got, want) {
		t.Errorf("steps %v, want %v", got, want)
	}
	for _, bad := range []string{"10m", "=50", "10m=", "10m=0", "-1m=5", "10=5", "10m=x"} {
		if _, err := parseRateSteps([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The embedded simulation changes its rate as --simulate-rate-steps says:
// at 0.2 jobs/s it would take minutes to hand ingest 300 entries; after the
// step to 200 jobs/s, seconds. Ingest settles what it publishes.
func TestSimulateRateSteps(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("BIGTABLE_EMULATOR_HOST", "")
	base, stop := startService(t, "--simulate-rate", "0.2", "--simulate-rate-steps", "1s=200")
	defer stop()
	published := waitMetric(t, base, "bqobserver_simulation_entries_total", 300, 30*time.Second)
	waitMetric(t, base, "bqobserver_ingest_appended_total", published*0.9, time.Minute)
	if !regexp.MustCompile(`(?m)^bqobserver_simulation_behind_seconds [0-9.e+-]+$`).MatchString(get(t, base+"/metrics")) {
		t.Error("/metrics has no bqobserver_simulation_behind_seconds")
	}
}

// In the embedded mode, how far the simulated organization is behind real
// time counts in the list's lag: the part of the backlog that it holds
// back is part of how late the list is.
func TestListLagCountsTheSimulation(t *testing.T) {
	ingestLag, err := bus.NewLag("ingest", prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	l := &listLag{ingest: ingestLag}
	if got := l.behind(time.Now()); got != 0 {
		t.Errorf("nothing in hand and no simulation: %v behind, want 0", got)
	}
	l.source = func() time.Duration { return 42 * time.Second }
	if got := l.behind(time.Now()); got != 42*time.Second {
		t.Errorf("the simulation 42 s behind: the list is %v behind, want 42s", got)
	}
}

// TestPprofRates: --pprof alone records no blocking events and no lock
// contention (recording costs CPU at every wait); the two flags turn
// each on at its rate.
func TestPprofRates(t *testing.T) {
	defer runtime.SetBlockProfileRate(0)
	defer runtime.SetMutexProfileFraction(runtime.SetMutexProfileFraction(0))
	runtime.SetBlockProfileRate(0)
	block := func() int { // blocks for 2ms at one site, then counts the block profile's records
		done := make(chan struct{})
		time.AfterFunc(2*time.Millisecond, func() { close(done) })
		<-done
		return pprof.Lookup("block").Count()
	}
	mount := func(f LimitFlags) {
		f.Pprof = true
		f.mountPprof(http.NewServeMux(), func(h http.Handler) http.Handler { return h })
	}

	mount(LimitFlags{})
	if before, after := pprof.Lookup("block").Count(), block(); after != before {
		t.Errorf("with --pprof alone the block profile went from %d to %d records, want none recorded", before, after)
	}
	if got := runtime.SetMutexProfileFraction(-1); got != 0 {
		t.Errorf("with --pprof alone the mutex profile fraction is %d, want 0", got)
	}

	mount(LimitFlags{PprofBlockRate: time.Nanosecond, PprofMutexFraction: 7})
	if before, after := pprof.Lookup("block").Count(), block(); after <= before {
		t.Errorf("with --pprof-block-rate 1ns the block profile went from %d to %d records, want the 2ms wait recorded", before, after)
	}
	if got := runtime.SetMutexProfileFraction(-1); got != 7 {
		t.Errorf("with --pprof-mutex-fraction 7 the mutex profile fraction is %d, want 7", got)
	}
}

// TestShutdownTimeoutPositive refuses a shutdown budget that has ended
// before the shutdown starts, in every command.
func TestShutdownTimeoutPositive(t *testing.T) {
	for _, args := range [][]string{{"run", "--shutdown-timeout=0s"}, {"--shutdown-timeout=-1s", "setup"}, {"simulate", "--shutdown-timeout=0s"}} {
		if r := runEnv(t, "", args...); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "--shutdown-timeout must be positive") {
			t.Errorf("%v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
}

// TestSimulationRetention: the embedded simulation beside the Bigtable
// emulator keeps finished jobs an hour, not the simulation's default day;
// simulate refuses an --api-retention the simulation would read as a day.
func TestSimulationRetention(t *testing.T) {
	c := &RunCmd{Simulate: true, SimulateRate: 50}
	if got := c.simulationRetention(&Globals{Retention: 9600 * time.Hour}, &backends{PubSubMode: modeEmbedded, BigtableMode: modeEmulator}); got != time.Hour {
		t.Errorf("simulation retention beside the emulator %s, want 1h", got)
	}
	if r := runEnv(t, "", "simulate", "--output", os.DevNull, "--api-retention", "0s"); r.code == 0 || !strings.Contains(r.stderr, "--api-retention must be positive") {
		t.Errorf("simulate --api-retention 0s: exit %d\n%s", r.code, r.stderr)
	}
}
