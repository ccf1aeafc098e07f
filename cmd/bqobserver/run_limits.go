package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/debug"
	"time"

	"cloud.google.com/go/bigtable"
)

// LimitFlags are the run command's bounds on memory and time, and its
// diagnostics.
type LimitFlags struct {
	EmbeddedRetention  time.Duration `help:"How long the in-process Bigtable of the embedded mode keeps events (garbage collection by event age). 0: an hour, or, when the simulated organization submits jobs faster, as long as it takes it to submit 2,000 jobs at its busiest rate (--simulate-rate or a step), so that memory stays bounded (40s at --simulate-rate 50); the simulated jobs API forgets finished jobs after as long. Other modes use --retention." default:"0s"`
	EmbeddedMemoryMiB  int           `name:"embedded-memory-limit" help:"Soft limit, in MiB, on the memory of the embedded mode (in-process Bigtable), for Go's garbage collector: it collects more often as the process nears it, and returns freed memory to the system sooner. 0: no limit. Off by default: when a backlog pushes what is live past it, the collector takes half the CPU (see the README). The GOMEMLIMIT variable, when set, takes precedence." default:"0"`
	EmbeddedGOGC       int           `name:"embedded-gogc" help:"The garbage collector's GOGC in the embedded mode: a collection starts when the heap has grown by this percentage of what the last one left live. Below Go's 100, so that the process stays under 400 MB at --simulate-rate 50 even on a busy machine, for a few percent more CPU. The GOGC variable, when set, takes precedence." default:"40"`
	RequestTimeout     time.Duration `help:"Bound on every HTTP request that touches Bigtable (a job's detail with its timeline, a cancel request's read of the job, enrichment's diagnostics, a push delivery; the history has --history-timeout): when it passes, the request is answered 503 with Retry-After." default:"5s"`
	HistoryTimeout     time.Duration `help:"Bound on a request of the history API (/api/v1/history), which reads a time range of the event log: when it passes, the request is answered 503 with Retry-After. Longer than --request-timeout: a range of hours holds many events." default:"10s"`
	RepairInterval     time.Duration `help:"How often to look for the event log's table, the topics and the subscriptions, and create again what went missing (with --auto-create or emulators; otherwise it is reported)." default:"10s"`
	Pprof              bool          `help:"Serve Go's profiles at /debug/pprof/, to admins authenticated like the API's callers (go tool pprof http://ADDR/debug/pprof/heap). Off by default: profiles show the process's internals."`
	PprofBlockRate     time.Duration `name:"pprof-block-rate" help:"With --pprof, fill /debug/pprof/block: record a blocking event per this much time goroutines spend blocked (every event that blocks longer). 0: off. Recording takes a stack trace at each wait: at 10µs it took about 3% of the service's CPU at 5,000 entries/s, and that showed in its CPU profile." default:"0s"`
	PprofMutexFraction int           `name:"pprof-mutex-fraction" help:"With --pprof, fill /debug/pprof/mutex: record one contended lock in this many. 0: off." default:"0"`
}

// The embedded log's automatic window: at most an hour, and no more than
// the time the simulation takes to submit embeddedJobs jobs. Each job
// costs the in-process Bigtable about 20 KB (about four events of some
// 5 KB: two copies of the event and the rows and cells around them) and
// the simulation about 1.5 KB, so the window holds about 45 MB. (A soft
// memory limit, tried instead of a shorter window, made the collector take
// half of the CPU as soon as a backlog built up, which made it grow.)
const (
	embeddedWindow = time.Hour
	embeddedJobs   = 2_000
)

// setEmbeddedGOGC sets the collector's pacing for the embedded mode, whose
// log and Pub/Sub live in the process: with Go's default, 100, the heap
// grows to twice what is live before a collection, which at
// --simulate-rate 50 (some 170 MB live with about 1,500 running jobs) put
// the process's memory past 400 MB. Unlike a memory limit, a lower GOGC
// keeps its cost in proportion when a backlog makes more live. GOGC, when
// set, is left alone. It returns the GOGC in force.
func (f *LimitFlags) setEmbeddedGOGC(getenv func(string) string) int {
	if getenv("GOGC") != "" || f.EmbeddedGOGC <= 0 {
		gogc := debug.SetGCPercent(100)
		debug.SetGCPercent(gogc)
		return gogc
	}
	debug.SetGCPercent(f.EmbeddedGOGC)
	return f.EmbeddedGOGC
}

// setEmbeddedMemoryLimit sets the Go runtime's soft memory limit for the
// embedded mode, whose log and Pub/Sub live in the process: with the
// collector's default pacing alone, the heap grows to twice what is live
// and idle memory is returned to the system late, which at
// --simulate-rate 50 put the process at about 470 MB for some 220 MB live.
// The limit makes the collector work harder only near it; but past it (a
// backlog on a machine too busy to drain it) the runtime lets the
// collector take about half the CPU, which slows the drain further: at
// 320 MiB on an overloaded machine the in-process log's appends timed out
// within fifteen minutes. Hence off by default.
// GOMEMLIMIT, when set, is left alone. It returns the limit in force
// (math.MaxInt64 for none).
func (f *LimitFlags) setEmbeddedMemoryLimit(getenv func(string) string) int64 {
	if getenv("GOMEMLIMIT") != "" || f.EmbeddedMemoryMiB <= 0 {
		return debug.SetMemoryLimit(-1)
	}
	limit := int64(f.EmbeddedMemoryMiB) << 20
	debug.SetMemoryLimit(limit)
	return limit
}

// logRetention is how long the event log keeps events.
func (c *RunCmd) logRetention(g *Globals, b *backends) time.Duration {
	rate := 0.0
	if c.Simulate && b.PubSubMode == modeEmbedded {
		rate = c.SimulateRate
		// The window must hold the busiest rate's jobs within the bound.
		// A step that does not parse fails the simulation's start.
		steps, _ := parseRateSteps(c.SimulateRateSteps)
		for _, st := range steps {
			rate = max(rate, st.rate)
		}
	}
	return c.Limits.logRetention(g.Retention, b.BigtableMode, rate)
}

// simulationRetention is how long the simulated jobs API shows a job after
// its end: as long as the in-process log keeps its events, so that the
// simulation's memory is bounded too; beside another Bigtable (the
// emulator), an hour, as simulate's --api-retention, not the simulation's
// own default of a day (some 17 GB at 50 jobs a second).
func (c *RunCmd) simulationRetention(g *Globals, b *backends) time.Duration {
	if b.BigtableMode != modeEmbedded {
		return time.Hour
	}
	return c.logRetention(g, b)
}

// logRetention is how long the event log keeps events: --retention, or in
// the embedded mode (an in-process Bigtable, whose memory is the process's)
// the embedded window. rate is the simulated jobs per second, 0 without a
// simulation.
func (f *LimitFlags) logRetention(retention time.Duration, bigtableMode string, rate float64) time.Duration {
	switch {
	case bigtableMode != modeEmbedded:
		return retention
	case f.EmbeddedRetention > 0:
		return f.EmbeddedRetention
	case rate <= 0:
		return embeddedWindow
	}
	w := time.Duration(embeddedJobs / rate * float64(time.Second)).Truncate(time.Second)
	return max(min(w, embeddedWindow), time.Second)
}

// startBttestGC makes the in-process Bigtable apply the table's
// garbage-collection rules: bttest starts collecting only once a family's
// rule is modified, not when a table is created with rules, so one family's
// rule is set again to what it is. Like the schema it follows, it is bound
// by schemaTimeout.
func startBttestGC(ctx context.Context, admin *bigtable.AdminClient, table string) error {
	ctx, cancel := context.WithTimeout(ctx, schemaTimeout)
	defer cancel()
	info, err := admin.TableInfo(ctx, table)
	if err != nil {
		return fmt.Errorf("reading table %s: %w", table, err)
	}
	if len(info.FamilyInfos) == 0 {
		return nil
	}
	f := info.FamilyInfos[0]
	if err := admin.SetGCPolicy(ctx, table, f.Name, f.FullGCPolicy); err != nil {
		return fmt.Errorf("starting garbage collection in table %s: %w", table, err)
	}
	return nil
}

// quietBttestGC drops the line the in-process Bigtable logs (with the
// standard library's log package) for every row its garbage collection
// touches: many a second in the embedded mode, where collection is how the
// log stays bounded.
func quietBttestGC() {
	log.SetOutput(dropLines{w: log.Writer(), prefix: []byte("bttest: GC MaxAge(")})
}

// dropLines writes what it is given to w, except log lines that begin,
// after the standard logger's date and time, with prefix.
type dropLines struct {
	w      io.Writer
	prefix []byte
}

func (d dropLines) Write(p []byte) (int, error) {
	if bytes.Contains(p, d.prefix) {
		return len(p), nil
	}
	return d.w.Write(p)
}

// mountPprof serves the profiles under /debug/pprof/ when --pprof is set,
// each through guard (the API's authentication, for admins only).
func (f *LimitFlags) mountPprof(mux *http.ServeMux, guard func(http.Handler) http.Handler) {
	if !f.Pprof {
		return
	}
	// The block and mutex profiles cost CPU at every wait while they
	// record, and distort the CPU profile with their stack traces: only
	// when asked.
	if f.PprofBlockRate > 0 {
		runtime.SetBlockProfileRate(int(f.PprofBlockRate.Nanoseconds()))
	}
	if f.PprofMutexFraction > 0 {
		runtime.SetMutexProfileFraction(f.PprofMutexFraction)
	}
	for path, h := range map[string]http.HandlerFunc{"/debug/pprof/": pprof.Index, "/debug/pprof/cmdline": pprof.Cmdline,
		"/debug/pprof/profile": pprof.Profile, "/debug/pprof/symbol": pprof.Symbol, "/debug/pprof/trace": pprof.Trace} {
		mux.Handle(path, guard(h))
	}
}

// Validate reports every flag that is out of range.
func (f *LimitFlags) Validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{"--request-timeout": f.RequestTimeout, "--history-timeout": f.HistoryTimeout, "--repair-interval": f.RepairInterval} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, not %s", name, d))
		}
	}
	if f.PprofBlockRate < 0 {
		errs = append(errs, fmt.Errorf("--pprof-block-rate must be 0 (off) or more, not %s", f.PprofBlockRate))
	}
	if f.PprofMutexFraction < 0 {
		errs = append(errs, fmt.Errorf("--pprof-mutex-fraction must be 0 (off) or more, not %d", f.PprofMutexFraction))
	}
	if f.EmbeddedGOGC < 0 {
		errs = append(errs, fmt.Errorf("--embedded-gogc must be 0 (Go's default pacing) or more, not %d", f.EmbeddedGOGC))
	}
	if f.EmbeddedRetention < 0 || f.EmbeddedRetention%time.Second != 0 {
		errs = append(errs, fmt.Errorf("--embedded-retention must be a whole number of seconds, 0 or more, not %s", f.EmbeddedRetention))
	}
	return errors.Join(errs...)
}
