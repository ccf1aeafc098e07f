package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigtable"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/api/iterator"

	"github.com/bqobserver/bqobserver/internal/emulator"
	"github.com/bqobserver/bqobserver/internal/measure"
	"github.com/bqobserver/bqobserver/internal/testutil/envtest"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/internal/testutil/pubsubtest"
)

// TestMain lets the load command's test run this test binary as the
// service: with GO_WANT_BQOBSERVER_MAIN=1 it is bqobserver.
func TestMain(m *testing.M) {
	if os.Getenv("GO_WANT_BQOBSERVER_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
	}
	os.Exit(m.Run())
}

// TestLoadResult computes a run's result from samples a second apart: the
// rates, lag quantiles and maxima, CPU per 1,000 entries and the machine's
// busy and stolen shares over the window, and the timeline from the start.
func TestLoadResult(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	bounds := []float64{0.1, 1, math.Inf(1)}
	var samples []loadSample
	for i := range 11 {
		n := float64(i)
		samples = append(samples, loadSample{
			at: start.Add(time.Duration(i) * time.Second), published: 1000 * n,
			received: 1000 * n, appended: 900 * n, skipped: 100 * n, pruned: 5 * n,
			ingestOldest: n / 10, feedOldest: n / 100,
			ingestLag: measure.Histogram{Bounds: bounds, Counts: []float64{500 * n, 1000 * n, 1000 * n}, Count: 1000 * n},
			feedLag:   measure.Histogram{Bounds: bounds, Counts: []float64{900 * n, 900 * n, 900 * n}, Count: 900 * n},
			// 10 writes a second, the first 5 s all within 0.1 s, then half of them within 1 s.
			logWrite: measure.Histogram{Bounds: bounds, Counts: []float64{10 * min(n, 5), 10*min(n, 5) + 10*max(n-5, 0), 10 * n}, Count: 10 * n},
			heap:     1e6 * n, service: measure.Usage{CPU: time.Duration(i) * 200 * time.Millisecond, RSS: int64(2e6 * n)},
			pubsub: measure.Usage{CPU: time.Duration(i) * 100 * time.Millisecond}, load: measure.Usage{CPU: time.Duration(i) * 50 * time.Millisecond},
			bigtable: measure.Usage{RSS: int64(4e6 * n)}, // its CPU time unseen
			// Two cores, three quarters busy, a hundredth stolen.
			machine: measure.Machine{Busy: 1.5 * n, Steal: 0.02 * n, Total: 2 * n},
		})
	}
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	gc := emulatorGC{
		pubsub: []emulator.GCEvent{{At: at(1), Pause: 200 * time.Millisecond}, {At: at(3), Pause: 100 * time.Millisecond},
			{At: at(7), Pause: 300 * time.Millisecond}, {At: at(10), Pause: 50 * time.Millisecond}, {At: at(11), Pause: time.Second}},
		bigtable: []emulator.GCEvent{{At: at(4), Pause: time.Millisecond, CPU: 2 * time.Second}, {At: at(9), CPU: time.Second}},
	}
	r := &loadResult{start: start, from: start.Add(2 * time.Second), to: start.Add(10 * time.Second)}
	r.compute(samples, gc, 5*time.Second)
	got := []float64{r.window.Seconds(), r.inRate, r.settledRate, r.appendedRate, r.skippedRate,
		r.ingestP50, r.ingestP99, r.ingestMax, r.feedP50, r.feedMax, r.rssMax, r.heapMax,
		r.cpuService, r.cpuPubSub, r.cpuBigtable, r.cpuLoad, r.pruned, r.logWriteP50, r.logWriteP99,
		r.pubsubRSSMax, r.bigtableRSSMax, r.pubsubPauses, r.pubsubLongestPause, r.bigtableGCCPU, r.machineBusy, r.machineSteal, r.machineOther}
	want := []float64{8, 1000, 1000, 900, 100,
		0.1, 0.982, 1, 0.05, 0.1, 20e6, 10e6,
		0.2, 0.1, math.NaN(), 0.05, 40,
		0.28, 0.9856, // of the window's 80 writes, 30 within 0.1 s and 50 between 0.1 and 1 s
		math.NaN(), 40e6, // the Pub/Sub emulator's memory was not seen
		0.45, 0.3, 3, // the collections after 2 s up to 10 s
		0.75, 0.01,
		0.575} // 1.5 of the 2 cores busy, 0.35 of them the service's, the Pub/Sub emulator's and the load command's
	if diff := cmp.Diff(got, want, cmpopts.EquateNaNs(), cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("window, rates, lag, memory, CPU, pruned jobs, log writes, the emulators' memory and collections, the machine, its other work (-got +want):\n%s", diff)
	}
	wantRows := []loadRow{
		{at: 5 * time.Second, in: 1000, appended: 900, skipped: 100, ingestOldest: 0.5, feedOldest: 0.05, logWriteP99: 0.099, rss: 10e6, heap: 5e6, cpu: 20, bigtableRSS: 20e6,
			pubsubPauses: 0.3, bigtableGCCPU: 2, machineBusy: 75, steal: 1},
		{at: 10 * time.Second, in: 1000, appended: 900, skipped: 100, ingestOldest: 1, feedOldest: 0.1, logWriteP99: 0.991, rss: 20e6, heap: 10e6, cpu: 20, bigtableRSS: 40e6,
			pubsubPauses: 0.35, bigtableGCCPU: 1, machineBusy: 75, steal: 1},
	}
	if diff := cmp.Diff(r.timeline, wantRows, cmp.AllowUnexported(loadRow{}), cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("timeline (-got +want):\n%s", diff)
	}

	// Emulators the run did not start: their collections are unknown, not none.
	r = &loadResult{start: start, from: start.Add(2 * time.Second), to: start.Add(10 * time.Second)}
	r.compute(samples, emulatorGC{}, 5*time.Second)
	unknown := []float64{r.pubsubPauses, r.pubsubLongestPause, r.bigtableGCCPU, r.timeline[0].pubsubPauses, r.timeline[1].bigtableGCCPU}
	for i, v := range unknown {
		if !math.IsNaN(v) {
			t.Errorf("collections of emulators not started: value %d is %g, want NaN", i, v)
		}
	}
}

// TestTimelineEnds gives the samples after the last full interval a row of
// their own, but not a closing sample taken a moment after the last row.
func TestTimelineEnds(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sample := func(secs float64, appended float64) loadSample {
		return loadSample{at: start.Add(time.Duration(secs * float64(time.Second))), appended: appended}
	}
	for _, c := range []struct {
		name    string
		samples []loadSample
		want    []time.Duration // the rows' ends
	}{
		{"a short last row", []loadSample{sample(0, 0), sample(1, 10), sample(2, 20), sample(3, 30)}, []time.Duration{2 * time.Second, 3 * time.Second}},
		{"a closing sample", []loadSample{sample(0, 0), sample(1, 10), sample(2, 20), sample(2.2, 22)}, []time.Duration{2 * time.Second}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []time.Duration
			for _, r := range timeline(c.samples, emulatorGC{}, start, 2*time.Second) {
				got = append(got, r.at)
				if r.appended != 10 {
					t.Errorf("row ending at %s appended %g a second, want 10", r.at, r.appended)
				}
			}
			if diff := cmp.Diff(got, c.want); diff != "" {
				t.Errorf("rows (-got +want):\n%s", diff)
			}
		})
	}
}

func TestLoadFormats(t *testing.T) {
	got := []string{grouped(0), grouped(999.6), grouped(1234567), grouped(-4321), grouped(math.NaN()), fixed(2)(1.005), fixed(0)(math.Inf(1))}
	want := []string{"0", "1,000", "1,234,567", "-4,321", "–", "1.00", "–"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("formats (-got +want):\n%s", diff)
	}
}

// TestLoadChildEnv keeps the caller's environment for the service a load run
// starts, but none of the settings that would change what the service does:
// its own flags' twins, PORT, the Go runtime's settings, and the caller's
// emulators.
func TestLoadChildEnv(t *testing.T) {
	set := map[string]string{
		"BQOBSERVER_AUTH": "iap", "PORT": "9999", "PUBSUB_EMULATOR_HOST": "127.0.0.1:1",
		"BIGTABLE_EMULATOR_HOST": "127.0.0.1:2", "BIGQUERY_EMULATOR_HOST": "127.0.0.1:3",
		"BIGQUERY_STORAGE_EMULATOR_HOST": "127.0.0.1:4", "LOAD_TEST_KEPT": "kept",
		"GOGC": "25", "GOMAXPROCS": "1", "GOMEMLIMIT": "200MiB", "GODEBUG": "gctrace=1",
	}
	for name, value := range set {
		t.Setenv(name, value)
	}
	var got []string
	for _, kv := range childEnv(&loadEmulators{pubsub: "127.0.0.1:5", bigtable: "127.0.0.1:6"}) {
		if name, _, _ := strings.Cut(kv, "="); set[name] != "" {
			got = append(got, kv)
		}
	}
	want := []string{"LOAD_TEST_KEPT=kept", "PUBSUB_EMULATOR_HOST=127.0.0.1:5", "BIGTABLE_EMULATOR_HOST=127.0.0.1:6"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("child environment (-got +want):\n%s", diff)
	}
}

// TestLoadCommand runs the load command against the emulators, with this
// test binary as the service: a short steady run (its entries made ahead,
// and made live) and a small backlog. Each
// report must account for what was published: the service settled it all,
// appended most of it, and the freshness probes were seen; after the
// backlog, the restarted service was ready and found the open-jobs index
// about as large as the running jobs.
func TestLoadCommand(t *testing.T) {
	pubsubtest.RequireEmulator(t)
	logtest.RequireEmulator(t)
	t.Setenv("GO_WANT_BQOBSERVER_MAIN", "1")
	tests := []struct {
		name string
		args []string
		rows []string // summary rows whose median must be positive
	}{
		{"steady", []string{"--rate", "400", "--duration", "12s", "--warmup", "4s"},
			[]string{"entries in (published)/s", "appended/s", "freshness probes seen in the list (%)", "service CPU s per 1,000 entries", "log write p99 (ms)"}},
		{"steady made live", []string{"--rate", "400", "--duration", "12s", "--warmup", "4s", "--generate", "live"},
			[]string{"entries in (published)/s", "appended/s", "freshness probes seen in the list (%)", "service CPU s per 1,000 entries", "log write p99 (ms)"}},
		{"backlog", []string{"--backlog", "3000", "--rate", "1000"},
			[]string{"drain rate, entries/s (backlog ÷ drain time)", "appended/s", "service Go heap max (MB)",
				"ready after restart (s), process start → /readyz 200", "restart: open-jobs index entries the first rebuild read",
				"restart: running jobs it listed", "restart: rebuild duration (s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			args := append([]string{"load", "--runs", "1", "--interval", "2s", "--emulators", "env"}, tt.args...)
			if code := runContext(t.Context(), args, strings.NewReader(""), &out, &errs, os.Getenv); code != 0 {
				t.Fatalf("load exited with %d:\n%s\n%s", code, out.String(), errs.String())
			}
			requireCleared(t, errs.String())
			for _, row := range tt.rows {
				if v := median(t, out.String(), row); !(v > 0) {
					t.Errorf("%s: median %g, want positive\n%s", row, v, out.String())
				}
			}
			if v := median(t, out.String(), "dead-lettered, handed back (entries)"); v != 0 {
				t.Errorf("%g entries dead-lettered or handed back; want none\n%s", v, out.String())
			}
			if tt.name != "backlog" {
				return
			}
			// The live feed keeps the open-jobs index close to the running jobs.
			entries, running := median(t, out.String(), "restart: open-jobs index entries the first rebuild read"), median(t, out.String(), "restart: running jobs it listed")
			if entries < running || entries > 1.05*running+20 {
				t.Errorf("after the drain the index held %g entries for %g running jobs, want at least as many and at most 5%% + 20 more\n%s", entries, running, out.String())
			}
		})
	}
}

// TestLoadClearsAfterAFailedBacklog: a run whose backlog cannot be
// published (its topic is not the one setup made) fails with the reason,
// and still deletes what its project made in the emulators.
func TestLoadClearsAfterAFailedBacklog(t *testing.T) {
	pubsubtest.RequireEmulator(t)
	logtest.RequireEmulator(t)
	t.Setenv("GO_WANT_BQOBSERVER_MAIN", "1")
	var out, errs bytes.Buffer
	args := []string{"load", "--audit-topic", "no-such-topic", "--runs", "1", "--emulators", "env", "--backlog", "3000", "--rate", "1000"}
	if code := runContext(t.Context(), args, strings.NewReader(""), &out, &errs, os.Getenv); code == 0 {
		t.Fatalf("load with a backlog it cannot publish exited with 0:\n%s", errs.String())
	}
	if !strings.Contains(errs.String(), "no-such-topic") {
		t.Errorf("the error does not name the topic:\n%s", errs.String())
	}
	requireCleared(t, errs.String())
}

// TestLoadWarmsTheEmulatorsItStarts runs the load command with emulators
// it starts from the gcloud SDK: before each measured run it starts a new
// pair and warms it up with a run of its own, which it logs and leaves out
// of the report, and the report says so.
func TestLoadWarmsTheEmulatorsItStarts(t *testing.T) {
	sdk := envtest.Getenv(t, "BQOBSERVER_GCLOUD_SDK", "the gcloud SDK's emulators")
	t.Setenv("GO_WANT_BQOBSERVER_MAIN", "1")
	var out, errs bytes.Buffer
	args := []string{"load", "--runs", "2", "--interval", "2s", "--emulators", "start", "--gcloud-sdk", sdk,
		"--warm-emulators", "6s", "--rate", "300", "--duration", "8s", "--warmup", "3s",
		"--pubsub-emulator-jvm=-Xmx1g -XX:MaxTenuringThreshold=0", "--cbtemulator-gogc", "120", "--cbtemulator-gomaxprocs", "1"}
	if code := runContext(t.Context(), args, strings.NewReader(""), &out, &errs, os.Getenv); code != 0 {
		t.Fatalf("load exited with %d:\n%s\n%s", code, out.String(), errs.String())
	}
	warmed := regexp.MustCompile(`"message":"load: warmed the emulators up","published":(\d+),"appended_per_s":(\d+)`).FindAllStringSubmatch(errs.String(), -1)
	if len(warmed) != 2 {
		t.Fatalf("the load command logged %d warm-ups, want one for each of the 2 runs:\n%s", len(warmed), errs.String())
	}
	for _, m := range warmed {
		if published, _ := strconv.Atoi(m[1]); published < 300 {
			t.Errorf("the warm-up published %d entries in 6s at 300/s, want at least 300", published)
		}
		if appended, _ := strconv.Atoi(m[2]); appended <= 0 {
			t.Errorf("the warm-up appended %d entries a second, want some", appended)
		}
	}
	// Each run had emulators of its own.
	started := regexp.MustCompile(`"message":"load: emulators started","pubsub":"([^"]+)","bigtable":"([^"]+)"`).FindAllStringSubmatch(errs.String(), -1)
	if len(started) != 2 || started[0][1] == started[1][1] && started[0][2] == started[1][2] {
		t.Errorf("emulators started for the 2 runs: %q, want two pairs", started)
	}
	report := out.String()
	if n := strings.Count(report, "### Run "); n != 2 {
		t.Errorf("the report has %d runs, want the two measured runs:\n%s", n, report)
	}
	for _, want := range []string{"a new pair for each run, warmed up first by 6s of 300 entries/s left out of the results",
		"the Pub/Sub emulator's JVM with `-Xmx1g -XX:MaxTenuringThreshold=0`, cbtemulator with GOGC 120, GOMAXPROCS 1"} {
		if !strings.Contains(report, want) {
			t.Errorf("the report does not say %q:\n%s", want, report)
		}
	}
	for _, row := range []string{"appended/s", "Pub/Sub emulator RSS max (MB)", "cbtemulator RSS max (MB)"} {
		if v := median(t, report, row); !(v > 0) {
			t.Errorf("%s: median %g, want positive\n%s", row, v, report)
		}
	}
	// The emulators' collector logs were read: none in the window is 0, an unread log "–".
	for _, row := range []string{"Pub/Sub emulator stopped by its collector (s)", "cbtemulator collections' CPU (s)"} {
		if v := median(t, report, row); !(v >= 0) {
			t.Errorf("%s: median %g, want a number\n%s", row, v, report)
		}
	}
}

// TestLoadRestartWaitsForQuietEmulators runs a small backlog on emulators
// the load command starts: before restarting the service it waits for them
// to go quiet, and reports the wait and the CPU they took while the service
// started, which it can only see for emulators it started.
func TestLoadRestartWaitsForQuietEmulators(t *testing.T) {
	sdk := envtest.Getenv(t, "BQOBSERVER_GCLOUD_SDK", "the gcloud SDK's emulators")
	t.Setenv("GO_WANT_BQOBSERVER_MAIN", "1")
	var out, errs bytes.Buffer
	args := []string{"load", "--runs", "1", "--interval", "2s", "--emulators", "start", "--gcloud-sdk", sdk,
		"--warm-emulators", "0", "--backlog", "3000", "--rate", "1000", "--pubsub-emulator-jvm=-Xmx1g"}
	if code := runContext(t.Context(), args, strings.NewReader(""), &out, &errs, os.Getenv); code != 0 {
		t.Fatalf("load exited with %d:\n%s\n%s", code, out.String(), errs.String())
	}
	report := out.String()
	if v := median(t, report, "restart: waited for the emulators to go quiet (s)"); !(v >= 0 && v <= quietWithin.Seconds()+2) {
		t.Errorf("waited %g s for quiet emulators, want 0 to %s\n%s", v, quietWithin, report)
	}
	if v := median(t, report, "restart: cbtemulator CPU s by ready"); !(v > 0) {
		t.Errorf("cbtemulator took %g CPU s while the service restarted, want some: it read its log from cbtemulator\n%s", v, report)
	}
	if v := median(t, report, "restart: Pub/Sub emulator CPU s by ready"); !(v >= 0) {
		t.Errorf("the Pub/Sub emulator took %g CPU s while the service restarted, want a number\n%s", v, report)
	}
	if v := median(t, report, "restart: machine CPU busy by ready (% of all cores)"); !(v > 0 && v <= 100) {
		t.Errorf("the machine was %g%% busy while the service restarted, want some: the service and cbtemulator worked\n%s", v, report)
	}
	for _, row := range []string{"machine CPU busy (% of all cores)", "restart: stolen by the hypervisor by ready (% of all cores)", "stolen by the hypervisor (% of all cores)"} {
		if v := median(t, report, row); !(v >= 0 && v <= 100) {
			t.Errorf("%s: %g, want a share of the machine\n%s", row, v, report)
		}
	}
	if v := median(t, report, "ready after restart (s), process start → /readyz 200"); !(v > 0) {
		t.Errorf("ready %g s after the restart, want positive\n%s", v, report)
	}
}

// requireCleared checks that the run the load command logged holds no
// subscription, topic or table on the emulators any more: they keep
// everything in memory.
func requireCleared(t *testing.T, logged string) {
	t.Helper()
	m := regexp.MustCompile(`"message":"load: deleted the run's [^"]*","project":"([^"]+)"`).FindStringSubmatch(logged)
	if m == nil {
		t.Fatalf("the load command did not log deleting its run's resources:\n%s", logged)
	}
	project := m[1]
	c := pubsubtest.Client(t, os.Getenv("PUBSUB_EMULATOR_HOST"), project)
	if s, err := c.SubscriptionAdminClient.ListSubscriptions(t.Context(), &pubsubpb.ListSubscriptionsRequest{Project: "projects/" + project}).Next(); !errors.Is(err, iterator.Done) {
		t.Errorf("after the run, project %s still has subscription %v (err %v)", project, s.GetName(), err)
	}
	if tp, err := c.TopicAdminClient.ListTopics(t.Context(), &pubsubpb.ListTopicsRequest{Project: "projects/" + project}).Next(); !errors.Is(err, iterator.Done) {
		t.Errorf("after the run, project %s still has topic %v (err %v)", project, tp.GetName(), err)
	}
	admin, err := bigtable.NewAdminClient(t.Context(), project, localInstance, localOptions(os.Getenv("BIGTABLE_EMULATOR_HOST"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if tables, err := admin.Tables(t.Context()); err != nil || len(tables) > 0 {
		t.Errorf("after the run, project %s still has tables %v (err %v)", project, tables, err)
	}
}

// TestLoadSummaryRestart checks the summary's restart rows in backlog
// mode: the min, median and max over the runs of each measure of the
// restart after the drain.
func TestLoadSummaryRestart(t *testing.T) {
	c := &LoadCmd{Backlog: 1000, Rate: 100, Runs: 3}
	var results []*loadResult
	for _, x := range []restartResult{
		{quietWait: 4 * time.Second, readyAfter: 1200 * time.Millisecond, pubsubCPU: 100 * time.Millisecond, bigtableCPU: 800 * time.Millisecond,
			machineBusy: 0.81, machineSteal: 0.004, indexEntries: 1500, running: 1480, finished: 20, rebuildSeconds: 0.91, cpu: 1500 * time.Millisecond, peakRSS: 300 << 20},
		{quietWait: 1 * time.Second, readyAfter: 800 * time.Millisecond, pubsubCPU: 30 * time.Millisecond, bigtableCPU: 670 * time.Millisecond,
			machineBusy: 0.75, machineSteal: 0, indexEntries: 1200, running: 1200, finished: 0, rebuildSeconds: 0.62, cpu: 1100 * time.Millisecond, peakRSS: 250 << 20},
		{quietWait: 12500 * time.Millisecond, readyAfter: 2500 * time.Millisecond, pubsubCPU: 234 * time.Millisecond, bigtableCPU: time.Second,
			machineBusy: 0.976, machineSteal: 0.012, indexEntries: 1700, running: 1650, finished: 45, rebuildSeconds: 1.734, cpu: 3210 * time.Millisecond, peakRSS: 1200 << 20},
	} {
		results = append(results, &loadResult{restart: x})
	}
	var out bytes.Buffer
	writeLoadSummary(&out, c, "a machine", results, nil)
	var got [][]string
	for _, row := range restartRows() {
		got = append(got, spread(t, out.String(), row.name))
	}
	want := [][]string{{"1.0", "4.0", "12.5"}, {"0.8", "1.2", "2.5"}, {"0.03", "0.10", "0.23"}, {"0.67", "0.80", "1.00"}, {"75", "81", "98"}, {"0.0", "0.4", "1.2"},
		{"1,200", "1,500", "1,700"}, {"1,200", "1,480", "1,650"}, {"0", "20", "45"}, {"0.62", "0.91", "1.73"}, {"1.10", "1.50", "3.21"}, {"250", "300", "1,200"}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("restart rows, min median max (-got +want):\n%s", diff)
	}
}

// TestLoadSummaryRestartEmulatorsUnseen checks that the restart's rows
// about the emulators say "–" when the command did not start them: their
// CPU was not seen.
func TestLoadSummaryRestartEmulatorsUnseen(t *testing.T) {
	c := &LoadCmd{Backlog: 1000, Rate: 100, Runs: 1}
	var out bytes.Buffer
	writeLoadSummary(&out, c, "a machine", []*loadResult{{restart: restartResult{quietWait: -1, readyAfter: time.Second}}}, nil)
	for _, row := range []string{"restart: waited for the emulators to go quiet (s)", "restart: Pub/Sub emulator CPU s by ready", "restart: cbtemulator CPU s by ready"} {
		if got := spread(t, out.String(), row); !slices.Equal(got, []string{"–", "–", "–"}) {
			t.Errorf("%s: %q, want – for emulators not started", row, got)
		}
	}
}

// TestLoadReportNamesEmulatorRuntimes checks that the summary says how the
// emulators the command started ran.
func TestLoadReportNamesEmulatorRuntimes(t *testing.T) {
	for _, tt := range []struct {
		c    LoadCmd
		want string
	}{
		{LoadCmd{Fresh: true, PubSubJVM: "-Xmx3g", BigtableGOGC: 150, BigtableProcs: 1},
			"started by the load command from the gcloud SDK, a new pair for each run; the Pub/Sub emulator's JVM with `-Xmx3g`, cbtemulator with GOGC 150, GOMAXPROCS 1"},
		{LoadCmd{PubSubJVM: "auto"},
			"started by the load command from the gcloud SDK, shared by the runs; the Pub/Sub emulator's JVM with its defaults, cbtemulator with its default GOGC"},
		{LoadCmd{Fresh: true, PubSubJVM: "", BigtableGOGC: -1, BigtableProcs: 1, BigtableLimit: "8GiB"},
			"started by the load command from the gcloud SDK, a new pair for each run; the Pub/Sub emulator's JVM with its defaults, cbtemulator with GOGC off, GOMAXPROCS 1, GOMEMLIMIT 8GiB"},
	} {
		if got := tt.c.emulatorsUsed([]*loadResult{{startedEmulators: true}}); got != tt.want {
			t.Errorf("emulators: %q\nwant %q", got, tt.want)
		}
	}
}

// TestPubSubJVM checks what --pubsub-emulator-jvm auto gives: the JVM's
// defaults for a steady run, and for a backlog a fixed heap of half the
// machine's memory with a third of it young, or the defaults on a machine
// too small to spare it; anything else is passed as given.
func TestPubSubJVM(t *testing.T) {
	for _, tt := range []struct {
		mem  uint64
		want string
	}{
		{24 << 30, "-Xms12g -Xmx12g -Xmn4g"},
		{23*(1<<30) + 400<<20, "-Xms12g -Xmx12g -Xmn4g"},
		{64 << 30, "-Xms32g -Xmx32g -Xmn11g"},
		{8 << 30, "-Xms4g -Xmx4g -Xmn1g"},
		{4 << 30, ""},
		{0, ""},
	} {
		if got := backlogJVM(tt.mem); got != tt.want {
			t.Errorf("backlogJVM(%d MiB) = %q, want %q", tt.mem>>20, got, tt.want)
		}
	}
	if got := (&LoadCmd{PubSubJVM: "auto"}).pubsubJVM(); got != "" {
		t.Errorf("auto for a steady run = %q, want the JVM's defaults", got)
	}
	if got, want := (&LoadCmd{PubSubJVM: "auto", Backlog: 1}).pubsubJVM(), backlogJVM(memTotal()); got != want {
		t.Errorf("auto for a backlog = %q, want %q", got, want)
	}
	for _, given := range []string{"", "-Xmx2g"} {
		if got := (&LoadCmd{PubSubJVM: given, Backlog: 1}).pubsubJVM(); got != given {
			t.Errorf("--pubsub-emulator-jvm=%q for a backlog gave %q", given, got)
		}
	}
}

// spread reads the min, median and max columns of a summary row.
func spread(t *testing.T, report, row string) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(row) + ` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$`).FindStringSubmatch(report)
	if m == nil {
		t.Fatalf("the report has no row %q:\n%s", row, report)
	}
	return []string{strings.TrimSpace(m[1]), strings.TrimSpace(m[2]), strings.TrimSpace(m[3])}
}

// median reads the median column of a summary row.
func median(t *testing.T, report, row string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(row) + ` \| [^|]+ \| ([^|]+) \|`).FindStringSubmatch(report)
	if m == nil {
		t.Fatalf("the report has no row %q:\n%s", row, report)
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(strings.TrimSpace(m[1]), ",", ""), 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

// TestPubSubHeap checks the heap the Pub/Sub emulator the load command
// starts gets (-Xmx, the last one given, after CLOUD_PUBSUB_EMULATOR_OPTS;
// else the JVM's quarter of the machine), and that on this repository's
// 24 GiB machine a run whose messages would fill most of it is warned of,
// while the measured defaults are not.
func TestPubSubHeap(t *testing.T) {
	const gib = 1 << 30
	for _, tt := range []struct {
		opts string
		want uint64
	}{
		{"", 6 * gib},
		{"-Xms12g -Xmx12g -Xmn4g", 12 * gib},
		{"-Xmx2g -Xlog:gc -Xmx13g", 13 * gib},
		{"-Xmx1g -Xmx20g", 20 * gib},
		{"-Xmx1g -Xmx2g -Xmx3g", 3 * gib},
		{"  -Xmx2g\t", 2 * gib},
		{"-Xmx512m", 512 << 20},
		{"-Xmx3G", 3 * gib},
		{"-Xmx4096k -XX:+UseG1GC", 4 << 20},
		{"-Xmn4g -XX:MaxTenuringThreshold=0", 6 * gib},
	} {
		if got := jvmMaxHeap(tt.opts, 24*gib); got != tt.want {
			t.Errorf("jvmMaxHeap(%q) = %d MiB, want %d MiB", tt.opts, got>>20, tt.want>>20)
		}
	}
	for _, tt := range []struct {
		name    string
		cmd     LoadCmd
		envOpts string
		warned  bool
	}{
		{"steady, the defaults", LoadCmd{Rate: 5000, Duration: 2 * time.Minute, PubSubJVM: "auto"}, "", false},
		{"steady for ten minutes", LoadCmd{Rate: 5000, Duration: 10 * time.Minute, PubSubJVM: "auto"}, "", true},
		{"steady for ten minutes, a heap to match", LoadCmd{Rate: 5000, Duration: 10 * time.Minute, PubSubJVM: "-Xmx20g"}, "", false},
		{"steady, the heap given in the environment", LoadCmd{Rate: 5000, Duration: 2 * time.Minute, PubSubJVM: "auto"}, "-Xmx1g", true},
		{"steady, the environment's heap raised by the flag", LoadCmd{Rate: 5000, Duration: 2 * time.Minute, PubSubJVM: "-Xmx20g"}, "-Xmx1g", false},
		{"a backlog of 300,000, auto", LoadCmd{Rate: 5000, Backlog: 300_000, PubSubJVM: "auto"}, "", false},
		{"a backlog of 3,000,000, auto", LoadCmd{Rate: 5000, Backlog: 3_000_000, PubSubJVM: "auto"}, "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logged bytes.Buffer
			e := &env{log: slog.New(slog.NewJSONHandler(&logged, nil)), getenv: func(k string) string {
				if k == "CLOUD_PUBSUB_EMULATOR_OPTS" {
					return tt.envOpts
				}
				return ""
			}}
			tt.cmd.warnOfPubSubHeap(e, 24*gib)
			if warned := strings.Contains(logged.String(), "fill most of its heap"); warned != tt.warned {
				need, heap := tt.cmd.pubsubHeap(24*gib, tt.envOpts)
				t.Errorf("warned %v, want %v (about %d MiB of a %d MiB heap): %s", warned, tt.warned, need>>20, heap>>20, logged.String())
			}
		})
	}
	// On a machine whose memory cannot be read, the JVM's default heap is
	// not known either: no warning rather than one of a 0 GiB heap.
	var logged bytes.Buffer
	(&LoadCmd{Rate: 5000, Duration: 2 * time.Minute, PubSubJVM: "auto"}).warnOfPubSubHeap(&env{log: slog.New(slog.NewJSONHandler(&logged, nil)), getenv: func(string) string { return "" }}, 0)
	if logged.Len() != 0 {
		t.Errorf("warned with the machine's memory unknown: %s", logged.String())
	}
}

// TestStartEmulatorsThatFail checks that an emulator that cannot start
// fails the load command with its reason, and that the one started before
// it is stopped: with no SDK at all, and with an SDK that has the Pub/Sub
// emulator but no cbtemulator.
func TestStartEmulatorsThatFail(t *testing.T) {
	e := &env{ctx: t.Context(), log: slog.New(slog.NewJSONHandler(io.Discard, nil)), getenv: func(string) string { return "" }}
	t.Run("no SDK", func(t *testing.T) {
		c := &LoadCmd{GcloudSDK: t.TempDir(), PubSubJVM: "auto", BigtableProcs: 1}
		if m, err := c.startEmulators(e, t.TempDir()); err == nil {
			m.close(e.log)
			t.Fatal("started emulators from an empty SDK")
		}
	})
	t.Run("no cbtemulator", func(t *testing.T) {
		sdk := envtest.Getenv(t, "BQOBSERVER_GCLOUD_SDK", "the gcloud SDK's emulators")
		half := t.TempDir()
		if err := os.MkdirAll(filepath.Join(half, "platform"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(sdk, "platform", "pubsub-emulator"), filepath.Join(half, "platform", "pubsub-emulator")); err != nil {
			t.Fatal(err)
		}
		c := &LoadCmd{GcloudSDK: half, PubSubJVM: "-Xmx256m", BigtableProcs: 1}
		work := t.TempDir()
		m, err := c.startEmulators(e, work)
		if err == nil {
			m.close(e.log)
			t.Fatal("started emulators from an SDK without cbtemulator")
		}
		t.Log(err)
		if !strings.Contains(err.Error(), "cbtemulator") && !strings.Contains(err.Error(), "bigtable") {
			t.Errorf("the error does not name the emulator that failed: %v", err)
		}
		// The Pub/Sub emulator started (its JVM's collector log is there),
		// and no process whose command line names work (the JVM's does,
		// for that log) is left.
		if _, err := os.Stat(filepath.Join(work, "pubsub-gc.log")); err != nil {
			t.Errorf("the Pub/Sub emulator did not start before cbtemulator failed: %v", err)
		}
		cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, f := range cmdlines {
			if b, _ := os.ReadFile(f); strings.Contains(string(b), work) {
				t.Errorf("a process of the failed start still runs: %s: %s", f, strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
	})
}

// TestCopyOutputLongLines: the service's output is copied to its log
// whole, lines longer than any buffer included, and the address it
// announces after them is passed on: a copier that stopped reading would
// leave the service blocked in its logger.
func TestCopyOutputLongLines(t *testing.T) {
	const long = 3 << 20
	cmd := exec.Command("sh", "-c", fmt.Sprintf(`head -c %d /dev/zero | tr '\0' x; echo; echo 'bqobserver is serving on http://127.0.0.1:1'; echo 'bqobserver is serving on http://127.0.0.1:2'; echo done`, long))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "service.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &loadService{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go s.copyOutput(out, logFile, addr)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the copier did not see the service's output end")
	}
	select {
	case a := <-addr:
		if a != "http://127.0.0.1:1" {
			t.Errorf("address %q, want the first announced", a)
		}
	default:
		t.Error("the address announced after a long line was not passed on")
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if want := long + len("\nbqobserver is serving on http://127.0.0.1:1\nbqobserver is serving on http://127.0.0.1:2\ndone\n"); len(b) != want || !strings.HasSuffix(string(b), "done\n") {
		t.Errorf("the log has %d bytes, want %d ending with the last line", len(b), want)
	}
}
