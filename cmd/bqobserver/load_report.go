package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"

	"github.com/bqobserver/bqobserver/internal/measure"
)

// mode describes what the runs did, for headings.
func (c *LoadCmd) mode() string {
	if c.Backlog > 0 {
		return fmt.Sprintf("backlog of %s entries (accumulated at %s entries/s)", grouped(float64(c.Backlog)), grouped(c.Rate))
	}
	return fmt.Sprintf("steady %s entries/s for %s (the first %s left out)", grouped(c.Rate), c.Duration, c.Warmup)
}

// flags describes the service's flags.
func (c *LoadCmd) flags() string {
	if len(c.ServiceFlags) == 0 {
		return "its defaults"
	}
	return "`" + strings.Join(c.ServiceFlags, " ") + "`"
}

// writeRun writes one run's heading, facts and timeline.
func writeRun(w io.Writer, c *LoadCmd, n int, r *loadResult) {
	fmt.Fprintf(w, "\n### Run %d of %d: %s\n\n", n, c.Runs, c.mode())
	for _, p := range r.problems {
		fmt.Fprintf(w, "**Flagged: this run %s.**\n\n", p)
	}
	fmt.Fprintf(w, "Load average %s before the run and its emulators' warm-up, %s after. Ready %.1f s after start; %s entries published",
		fixed(2)(r.loadBefore), fixed(2)(r.loadAfter), r.readyAfter.Seconds(), grouped(float64(r.published)))
	if c.Backlog > 0 {
		fmt.Fprintf(w, " in %.1f s before the start; drained %.1f s after the start. Stopped and started again: ready %.1f s after the restart; its rebuild read %s open-jobs index entries for %s running jobs in %.2f s.",
			r.preloadTime.Seconds(), r.to.Sub(r.start).Seconds(), r.restart.readyAfter.Seconds(),
			grouped(r.restart.indexEntries), grouped(r.restart.running), r.restart.rebuildSeconds)
	} else {
		fmt.Fprintf(w, "; rates over the %.0f s of publishing after the warm-up: %s in and %s appended a second; %s; lag up to then: ingest lag p99 %s s; freshness p50 %s and p99 %s, %s.",
			r.window.Seconds(), grouped(r.inRate), grouped(r.appendedRate), caughtUpText(r.caughtUp), fixed(2)(r.ingestP99),
			freshnessMs(r.freshness.p50), freshnessMs(r.freshness.p99), r.freshness.seenText())
	}
	fmt.Fprintf(w, " CPU s per 1,000 entries: service %s, Pub/Sub emulator %s, cbtemulator %s, load command %s. The machine's cores were %s%% busy (%s%% with work other than these processes') and %s%% stolen by the hypervisor.",
		fixed(3)(r.cpuService), fixed(3)(r.cpuPubSub), fixed(3)(r.cpuBigtable), fixed(3)(r.cpuLoad),
		fixed(0)(100*r.machineBusy), fixed(0)(100*r.machineOther), fixed(1)(100*r.machineSteal))
	if r.sampleFailures > 0 {
		fmt.Fprintf(w, " Of %d samples, %d failed (the last: %s).", r.sampled+r.sampleFailures, r.sampleFailures, r.sampleErr)
	}
	fmt.Fprint(w, "\n\n")
	fmt.Fprintln(w, "| t | in/s | appended/s | skipped/s | ingest oldest (s) | feed oldest (s) | log write p99 (ms) | RSS (MB) | Go heap (MB) | service CPU (%) | cbtemulator RSS (MB) | cbtemulator GC CPU (s) | Pub/Sub emulator GC pauses (ms) | machine busy (%) | stolen (%) |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, row := range r.timeline {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.1f | %.1f | %s | %.0f | %.0f | %.0f | %s | %s | %s | %s | %s |\n", row.at, grouped(row.in), grouped(row.appended),
			grouped(row.skipped), row.ingestOldest, row.feedOldest, fixed(0)(1000*row.logWriteP99), row.rss/1e6, row.heap/1e6, row.cpu,
			fixed(0)(row.bigtableRSS/1e6), fixed(1)(row.bigtableGCCPU), fixed(0)(1000*row.pubsubPauses), fixed(0)(row.machineBusy), fixed(1)(row.steal))
	}
}

// summaryRow is one measure of the summary, taken from each run.
type summaryRow struct {
	name   string
	format func(float64) string
	value  func(*loadResult) float64
}

// summaryRows are the summary's measures for the mode.
func (c *LoadCmd) summaryRows() []summaryRow {
	secs := func(d time.Duration) float64 { return d.Seconds() }
	rows := []summaryRow{
		{"load average (1 min) before the run and its emulators' warm-up", fixed(2), func(r *loadResult) float64 { return r.loadBefore }},
		{"ready after start (s)", fixed(1), func(r *loadResult) float64 { return secs(r.readyAfter) }},
	}
	if c.Backlog > 0 {
		rows = append(rows,
			summaryRow{"drain time from start (s)", fixed(1), func(r *loadResult) float64 { return r.to.Sub(r.start).Seconds() }},
			summaryRow{"drain rate, entries/s (backlog ÷ drain time)", grouped, func(r *loadResult) float64 { return float64(r.published) / r.to.Sub(r.start).Seconds() }})
	} else {
		rows = append(rows, summaryRow{"entries in (published)/s", grouped, func(r *loadResult) float64 { return r.inRate }})
	}
	rows = append(rows,
		summaryRow{"entries settled/s (appended + skipped + dead-lettered)", grouped, func(r *loadResult) float64 { return r.settledRate }},
		summaryRow{"appended/s", grouped, func(r *loadResult) float64 { return r.appendedRate }},
		summaryRow{"skipped/s", grouped, func(r *loadResult) float64 { return r.skippedRate }},
		summaryRow{"dead-lettered, handed back (entries)", grouped, func(r *loadResult) float64 { return r.deadLettered + r.handedBack }},
		summaryRow{"ingest lag p50 (s), publish → appended", fixed(2), func(r *loadResult) float64 { return r.ingestP50 }},
		summaryRow{"ingest lag p99 (s)", fixed(2), func(r *loadResult) float64 { return r.ingestP99 }},
		summaryRow{"ingest lag max (s), highest lag bucket's bound or oldest unprocessed seen", beyond(1, "> top bucket"), func(r *loadResult) float64 { return r.ingestMax }},
		summaryRow{"feed lag p50 (s), appended → applied", fixed(2), func(r *loadResult) float64 { return r.feedP50 }},
		summaryRow{"feed lag p99 (s)", fixed(2), func(r *loadResult) float64 { return r.feedP99 }},
		summaryRow{"feed lag max (s), highest lag bucket's bound or oldest unprocessed seen", beyond(1, "> top bucket"), func(r *loadResult) float64 { return r.feedMax }},
		summaryRow{"log write p50 (ms), one batch to the event log", fixed(1), func(r *loadResult) float64 { return 1000 * r.logWriteP50 }},
		summaryRow{"log write p99 (ms)", fixed(1), func(r *loadResult) float64 { return 1000 * r.logWriteP99 }},
		summaryRow{"finished jobs the live feed pruned from the open-jobs index", grouped, func(r *loadResult) float64 { return r.pruned }},
	)
	if c.Backlog == 0 {
		rows = append(rows,
			summaryRow{"freshness p50 (ms), publish → in the list, an unseen probe counted as infinitely late", beyond(0, "not seen"), func(r *loadResult) float64 { return ms(r.freshness.p50) }},
			summaryRow{"freshness p99 (ms)", beyond(0, "not seen"), func(r *loadResult) float64 { return ms(r.freshness.p99) }},
			summaryRow{"freshness probes seen in the list (%)", fixed(1), func(r *loadResult) float64 {
				return 100 * float64(r.freshness.seen) / float64(r.freshness.probes)
			}},
			summaryRow{"caught up after publishing stopped (s)", beyond(1, fmt.Sprintf("> %.0f", settleWithin.Seconds())), func(r *loadResult) float64 { return r.caughtUp }})
	} else {
		rows = append(rows, restartRows()...)
	}
	return append(rows,
		summaryRow{"service RSS max (MB)", fixed(0), func(r *loadResult) float64 { return r.rssMax / 1e6 }},
		summaryRow{"service Go heap max (MB)", fixed(0), func(r *loadResult) float64 { return r.heapMax / 1e6 }},
		summaryRow{"Pub/Sub emulator RSS max (MB)", fixed(0), func(r *loadResult) float64 { return r.pubsubRSSMax / 1e6 }},
		summaryRow{"cbtemulator RSS max (MB)", fixed(0), func(r *loadResult) float64 { return r.bigtableRSSMax / 1e6 }},
		summaryRow{"Pub/Sub emulator stopped by its collector (s)", fixed(1), func(r *loadResult) float64 { return r.pubsubPauses }},
		summaryRow{"Pub/Sub emulator's longest collector pause (ms)", fixed(0), func(r *loadResult) float64 { return 1000 * r.pubsubLongestPause }},
		summaryRow{"cbtemulator collections' CPU (s)", fixed(1), func(r *loadResult) float64 { return r.bigtableGCCPU }},
		summaryRow{"service CPU s per 1,000 entries", fixed(3), func(r *loadResult) float64 { return r.cpuService }},
		summaryRow{"Pub/Sub emulator CPU s per 1,000 entries", fixed(3), func(r *loadResult) float64 { return r.cpuPubSub }},
		summaryRow{"cbtemulator CPU s per 1,000 entries", fixed(3), func(r *loadResult) float64 { return r.cpuBigtable }},
		summaryRow{"load command CPU s per 1,000 entries", fixed(3), func(r *loadResult) float64 { return r.cpuLoad }},
		summaryRow{"machine CPU busy (% of all cores)", fixed(0), func(r *loadResult) float64 { return 100 * r.machineBusy }},
		summaryRow{"machine CPU busy with other work (% of all cores), less the service, the emulators started and the load command", fixed(0), func(r *loadResult) float64 { return 100 * r.machineOther }},
		summaryRow{"stolen by the hypervisor (% of all cores)", fixed(1), func(r *loadResult) float64 { return 100 * r.machineSteal }},
	)
}

// writeLoadSummary writes the heading, the machine and the min, median and
// max of every measure over the runs, saying over how many when a run did
// not measure it, and the runs flagged. withheld are the Go runtime's
// variables of the shell the service did not get (childEnv).
func writeLoadSummary(w io.Writer, c *LoadCmd, machine string, results []*loadResult, withheld []string) {
	fmt.Fprintf(w, "\n## bqobserver load: %s, %d run(s)\n\n", c.mode(), len(results))
	fmt.Fprintf(w, "%s. The service ran with %s and Go's runtime defaults%s, against the Pub/Sub emulator and cbtemulator (%s).",
		machine, c.flags(), withheldText(withheld), c.emulatorsUsed(results))
	if c.Backlog == 0 {
		fmt.Fprint(w, " Rates, CPU, the emulators' collections and the machine's shares are over the publishing after the warm-up; lag and memory over the same start until the service had caught up; freshness of the probes published in the rates' window.")
	}
	fmt.Fprint(w, "\n\n")
	fmt.Fprintln(w, "| measure | min | median | max |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
	for _, row := range c.summaryRows() {
		vs := make([]float64, len(results))
		for i, r := range results {
			vs[i] = row.value(r)
		}
		s := measure.SpreadOf(vs)
		name := row.name
		if s.N > 0 && s.N < len(results) {
			name += fmt.Sprintf(" (of %d runs of %d)", s.N, len(results))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", name, row.format(s.Min), row.format(s.Median), row.format(s.Max))
	}
	for i, r := range results {
		for _, p := range r.problems {
			fmt.Fprintf(w, "\nFlagged: run %d %s.\n", i+1, p)
		}
	}
}

// withheldText says which of the shell's Go runtime variables the service
// did not get.
func withheldText(withheld []string) string {
	if len(withheld) == 0 {
		return ""
	}
	return " (the shell's `" + strings.Join(withheld, " ") + "` withheld from it, not from emulators the load command starts)"
}

// caughtUpText says when a steady run had caught up (loadResult.caughtUp).
func caughtUpText(secs float64) string {
	switch {
	case math.IsInf(secs, 1):
		return fmt.Sprintf("did not catch up within %.0f s", settleWithin.Seconds())
	case math.IsNaN(secs):
		return "not known whether it caught up"
	}
	return fmt.Sprintf("caught up %.1f s after publishing stopped", secs)
}

// freshnessMs formats a freshness quantile in milliseconds, or says that
// the probe at that quantile was not seen.
func freshnessMs(d time.Duration) string {
	if d == unseen {
		return "not seen"
	}
	return fixed(0)(ms(d)) + " ms"
}

// seenText gives the share of the probes the list showed, and how long
// each was watched for at least.
func (f freshnessResult) seenText() string {
	if f.probes == 0 {
		return "no probe"
	}
	return fmt.Sprintf("%s%% of %s probes seen in the list (each watched %.1f s or more)",
		fixed(1)(100*float64(f.seen)/float64(f.probes)), grouped(float64(f.probes)), f.watched.Seconds())
}

func (c *LoadCmd) emulatorsUsed(results []*loadResult) string {
	if len(results) > 0 && !results[0].startedEmulators {
		return "from PUBSUB_EMULATOR_HOST and BIGTABLE_EMULATOR_HOST, shared by the runs"
	}
	desc := "started by the load command from the gcloud SDK, shared by the runs"
	if c.Fresh {
		desc = "started by the load command from the gcloud SDK, a new pair for each run"
	}
	if c.Warm > 0 {
		desc += fmt.Sprintf(", warmed up first by %s of %s entries/s left out of the results", c.Warm, grouped(c.Rate))
	}
	jvm, gogc := "its defaults", "its default GOGC"
	if o := c.pubsubJVM(); o != "" {
		jvm = "`" + o + "`"
	}
	switch {
	case c.BigtableGOGC < 0:
		gogc = "GOGC off"
	case c.BigtableGOGC > 0:
		gogc = "GOGC " + strconv.Itoa(c.BigtableGOGC)
	}
	if c.BigtableProcs != 0 {
		gogc += ", GOMAXPROCS " + strconv.Itoa(c.BigtableProcs)
	}
	if c.BigtableLimit != "" {
		gogc += ", GOMEMLIMIT " + c.BigtableLimit
	}
	return desc + fmt.Sprintf("; the Pub/Sub emulator's JVM with %s, cbtemulator with %s", jvm, gogc)
}

// machineNow describes the date and the machine: CPUs, their model and
// memory.
func machineNow() string {
	desc := fmt.Sprintf("%s, %d CPUs", time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU())
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return desc
	}
	if cpus, err := fs.CPUInfo(); err == nil && len(cpus) > 0 {
		desc += " (" + cpus[0].ModelName + ")"
	}
	if mem := memTotal(); mem > 0 {
		desc += fmt.Sprintf(", %.1f GiB of memory", float64(mem)/(1<<30))
	}
	return desc
}

// memTotal is the machine's memory in bytes, 0 when /proc does not say.
func memTotal() uint64 {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0
	}
	mem, err := fs.Meminfo()
	if err != nil || mem.MemTotal == nil {
		return 0
	}
	return *mem.MemTotal << 10
}

// ms is d in milliseconds: NaN for a negative d (none measured), +Inf for
// unseen.
func ms(d time.Duration) float64 {
	switch {
	case d < 0:
		return math.NaN()
	case d == unseen:
		return math.Inf(1)
	}
	return float64(d) / float64(time.Millisecond)
}

// fixed formats with n decimals; NaN as "–".
func fixed(n int) func(float64) string {
	return func(v float64) string {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "–"
		}
		return strconv.FormatFloat(v, 'f', n, 64)
	}
}

// beyond formats with n decimals, NaN as "–" and +Inf, a value beyond
// what the measure can tell, as over.
func beyond(n int, over string) func(float64) string {
	return func(v float64) string {
		if math.IsInf(v, 1) {
			return over
		}
		return fixed(n)(v)
	}
}

// grouped formats a count or rate as a whole number with thousands
// separated by commas; NaN as "–".
func grouped(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// restartRows are the summary's measures of the restart after a backlog.
func restartRows() []summaryRow {
	return []summaryRow{
		{"restart: waited for the emulators to go quiet (s)", fixed(1), func(r *loadResult) float64 { return r.restart.ofStarted(r.restart.quietWait) }},
		{"ready after restart (s), process start → /readyz 200", fixed(1), func(r *loadResult) float64 { return r.restart.readyAfter.Seconds() }},
		{"restart: Pub/Sub emulator CPU s by ready", fixed(2), func(r *loadResult) float64 { return r.restart.ofStarted(r.restart.pubsubCPU) }},
		{"restart: cbtemulator CPU s by ready", fixed(2), func(r *loadResult) float64 { return r.restart.ofStarted(r.restart.bigtableCPU) }},
		{"restart: machine CPU busy by ready (% of all cores)", fixed(0), func(r *loadResult) float64 { return 100 * r.restart.machineBusy }},
		{"restart: stolen by the hypervisor by ready (% of all cores)", fixed(1), func(r *loadResult) float64 { return 100 * r.restart.machineSteal }},
		{"restart: open-jobs index entries the first rebuild read", grouped, func(r *loadResult) float64 { return r.restart.indexEntries }},
		{"restart: running jobs it listed", grouped, func(r *loadResult) float64 { return r.restart.running }},
		{"restart: finished jobs it found in the index and pruned", grouped, func(r *loadResult) float64 { return r.restart.finished }},
		{"restart: rebuild duration (s)", fixed(2), func(r *loadResult) float64 { return r.restart.rebuildSeconds }},
		{"restart: service CPU s by ready", fixed(2), func(r *loadResult) float64 { return r.restart.cpu.Seconds() }},
		{"restart: service RSS peak by ready (MB)", grouped, func(r *loadResult) float64 { return float64(r.restart.peakRSS) / (1 << 20) }},
	}
}
