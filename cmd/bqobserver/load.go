package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// LoadCmd measures the service as its users run it: it runs the bqobserver
// binary, with its default flags and Go's runtime defaults, against the Pub/Sub emulator and
// cbtemulator, feeds it a simulated organization's audit entries at a steady
// rate or as a backlog published before it starts, and prints what it saw
// from outside (the service's /metrics and API, and /proc) as Markdown, for
// the README's performance section. After a backlog has drained, it stops
// the service with SIGTERM and starts it again on the same log, and reports
// how soon it was ready and what its first rebuild found.
type LoadCmd struct {
	Rate      float64       `help:"Audit entries a second the simulated organization publishes (steady mode), or the rate the backlog accumulated at." default:"5000"`
	Duration  time.Duration `help:"How long to publish at --rate (steady mode)." default:"2m"`
	Warmup    time.Duration `help:"The first part of a steady run, left out of its rates and percentiles." default:"30s"`
	Generate  string        `help:"When a steady run's entries are made: ahead (all of them before publishing starts, stamped for the moments they are published at, so that making them takes none of the CPU the service shares during the run; held in memory, about 5.5 KB an entry, at most 2,000,000 a run) or live (as they are published, as simulate does; for runs too long to hold)." enum:"ahead,live" default:"ahead"`
	Backlog   int           `help:"Publish this many entries before the service starts, then measure how it drains them, and how soon it is ready again when restarted after the drain (backlog mode)."`
	Runs      int           `help:"How many runs; the summary gives the min, median and max of each measure." default:"3"`
	Interval  time.Duration `help:"Period of the timeline's rows." default:"10s"`
	Binary    string        `help:"The bqobserver binary to measure (default: this one)."`
	Emulators string        `help:"Where the emulators come from: auto (PUBSUB_EMULATOR_HOST and BIGTABLE_EMULATOR_HOST when both are set, else start), start (pairs from the gcloud SDK, started and stopped by the command; see --fresh-emulators), env (the variables). Every run uses a project of its own." enum:"auto,start,env" default:"auto"`
	GcloudSDK string        `name:"gcloud-sdk" help:"Root of the gcloud SDK whose emulators to start (default: what gcloud info says)."`
	Warm      time.Duration `name:"warm-emulators" help:"When the load command starts the emulators: before the first run, publish at --rate to the service for this long, steady, in a project of its own, and leave it out of the results, so that the first run does not measure the Java Pub/Sub emulator compiling itself (it then needs two to three times the CPU an entry it needs later). 0: no warm-up." default:"90s"`
	Seed      uint64        `help:"Seed of the simulated organization; run i uses seed+i-1." default:"1"`

	Fresh         bool   `name:"fresh-emulators" default:"true" negatable:"" help:"When the load command starts the emulators: a new pair for every run, warmed up and stopped after it, so that no run inherits the memory (and the collector's work) of the runs before it. --no-fresh-emulators: one pair for all the runs."`
	PubSubJVM     string `name:"pubsub-emulator-jvm" default:"auto" help:"JVM options of the Pub/Sub emulator the load command starts, added to CLOUD_PUBSUB_EMULATOR_OPTS; give them with an equals sign: --pubsub-emulator-jvm='-Xmx8g'. Empty (--pubsub-emulator-jvm=''): the JVM's defaults (G1, a heap of at most a quarter of the machine's memory). auto: the defaults for steady runs, where the emulator keeps every message and a large young generation makes long pauses; for a backlog, a fixed heap of half the machine's memory with a third of it young (-Xms12g -Xmx12g -Xmn4g on 24 GiB), which keeps the collector from stopping the emulator for most of a drain. The command warns when a run's messages (about 5 KiB an entry, which the emulator keeps) would fill more than four fifths of the heap the emulator gets."`
	BigtableGOGC  int    `name:"cbtemulator-gogc" help:"GOGC of the cbtemulator the load command starts. 0: Go's default (100), or the GOGC variable's; -1 (--cbtemulator-gogc=-1): off, so that with --cbtemulator-gomemlimit it collects only when its heap nears the limit."`
	BigtableLimit string `name:"cbtemulator-gomemlimit" help:"GOMEMLIMIT of the cbtemulator the load command starts, as Go reads it (8GiB, 512MiB). Empty: none, or the GOMEMLIMIT variable's."`
	BigtableProcs int    `name:"cbtemulator-gomaxprocs" default:"1" help:"GOMAXPROCS of the cbtemulator the load command starts. Its collector marks on every core it is allowed and finds idle, the service's included: with Go's default it took 14-17 CPU s of a 2-minute steady run at 5,000 entries/s, and the service fell short in the rows it did; on one core, 7-9 s. 0: Go's default (the machine's cores), or the GOMAXPROCS variable's."`

	ServiceFlags []string `arg:"" optional:"" help:"Flags for bqobserver run, after --, to measure settings other than the defaults. The service gets none of the shell's BQOBSERVER_ variables, nor its GOGC, GOMAXPROCS, GOMEMLIMIT or GODEBUG (the report names those it withheld); the emulators the command starts get them."`
}

// Run measures --runs runs and prints each run's timeline and a summary.
func (c *LoadCmd) Run(g *Globals, e *env) error {
	if err := c.check(); err != nil {
		return err
	}
	binary, err := c.binary()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "bqobserver-load-")
	if err != nil {
		return fmt.Errorf("making a work directory: %w", err)
	}
	e.log.Info("load: logs of the service and the emulators go here", "dir", work)
	if _, _, fromEnv := c.emulatorsFromEnv(e); !fromEnv {
		c.warnOfPubSubHeap(e, memTotal())
	}
	return c.runs(e, loadSteps{
		open: func(run int) (*loadEmulators, error) {
			emu, err := c.openEmulators(e, filepath.Join(work, "emulators-"+strconv.Itoa(run)))
			if err != nil {
				return nil, err
			}
			if err := c.warmUp(e, g, emu, binary, work); err != nil {
				emu.close(e.log)
				return nil, err
			}
			return emu, nil
		},
		measure: func(emu *loadEmulators, run int) (*loadResult, error) {
			return c.runOnce(e, g, emu, binary, work, strconv.Itoa(run), c.Seed+uint64(run-1))
		},
		release: func(emu *loadEmulators) bool {
			if !c.Fresh || len(emu.started) == 0 {
				return false
			}
			emu.close(e.log)
			return true
		},
		loadAverage: loadAverage,
		machine:     machineNow,
	})
}

// loadSteps are what LoadCmd.runs does for each run, which tests replace.
type loadSteps struct {
	open        func(run int) (*loadEmulators, error) // the emulators for run (from 1), warmed up
	measure     func(emu *loadEmulators, run int) (*loadResult, error)
	release     func(emu *loadEmulators) bool // after a run: stops emu if the next run is to have new ones
	loadAverage func() float64
	machine     func() string // the date and the machine, for the summary
}

// runs measures --runs runs with steps, writing each run and then the
// summary of the runs measured, also when a later run, or the start of its
// emulators, fails. Each run's load average is read before its emulators
// start and warm up, whose work it would otherwise show.
func (c *LoadCmd) runs(e *env, s loadSteps) (err error) {
	var emu *loadEmulators
	defer func() {
		if emu != nil {
			emu.close(e.log)
		}
	}()
	var results []*loadResult
	failed := func(run int, err error) error {
		if len(results) > 0 { // what the runs before it measured still stands
			writeLoadSummary(e.stdout, c, s.machine(), results, withheld(e.getenv))
		}
		return fmt.Errorf("run %d: %w", run, err)
	}
	for run := 1; run <= c.Runs; run++ {
		before := s.loadAverage()
		if emu == nil {
			if emu, err = s.open(run); err != nil {
				return failed(run, err)
			}
		}
		r, err := s.measure(emu, run)
		if s.release(emu) {
			emu = nil
		}
		if err != nil {
			return failed(run, err)
		}
		r.loadBefore = before
		writeRun(e.stdout, c, run, r)
		results = append(results, r)
		if e.ctx.Err() != nil {
			break
		}
	}
	writeLoadSummary(e.stdout, c, s.machine(), results, withheld(e.getenv))
	return nil
}

func (c *LoadCmd) check() error {
	var errs []error
	if c.Rate <= 0 {
		errs = append(errs, fmt.Errorf("--rate must be positive, not %g", c.Rate))
	}
	if c.Backlog < 0 || c.Runs < 1 || c.Interval < time.Second || c.Warm < 0 || c.Warmup < 0 {
		errs = append(errs, errors.New("--backlog, --warmup and --warm-emulators must not be negative, --runs must be at least 1 and --interval at least 1s"))
	}
	if c.Backlog == 0 && c.Warmup >= c.Duration {
		errs = append(errs, fmt.Errorf("--warmup (%s) must be shorter than --duration (%s)", c.Warmup, c.Duration))
	}
	if c.BigtableLimit != "" && !goMemLimit.MatchString(c.BigtableLimit) {
		errs = append(errs, fmt.Errorf("--cbtemulator-gomemlimit %q is not a size Go reads, such as 8GiB or 512MiB", c.BigtableLimit))
	}
	if n := c.Rate * c.Duration.Seconds(); c.Backlog == 0 && c.Generate == "ahead" && n > maxAheadEntries {
		errs = append(errs, fmt.Errorf("--generate ahead holds a run's entries in memory, at most %d; --rate %g for %s makes about %.0f (use --generate live)",
			maxAheadEntries, c.Rate, c.Duration, n))
	}
	return errors.Join(errs...)
}

// goMemLimit is the form of a GOMEMLIMIT the Go runtime accepts: bytes, or
// a number with a binary unit.
var goMemLimit = regexp.MustCompile(`^[0-9]+(B|KiB|MiB|GiB|TiB)?$`)

// pubsubJVM is the Pub/Sub emulator's JVM options --pubsub-emulator-jvm
// asks for: with auto, the JVM's defaults for a steady run and
// backlogJVM's for a backlog.
func (c *LoadCmd) pubsubJVM() string {
	return c.pubsubJVMOn(memTotal())
}

// pubsubJVMOn is pubsubJVM on a machine of mem bytes.
func (c *LoadCmd) pubsubJVMOn(mem uint64) string {
	if c.PubSubJVM != "auto" {
		return c.PubSubJVM
	}
	if c.Backlog == 0 {
		return ""
	}
	return backlogJVM(mem)
}

// pubsubHeapPerEntry is about what the Pub/Sub emulator's heap holds for
// each audit entry a run publishes, with the service's events of it: the
// emulator keeps every message until its topic is deleted (60,000 entries
// of 3 KB held 187 MB; at 50 jobs/s a heap of 6 GiB filled after about
// 1.05 million entries and one of 3 GiB after about 630,000, enrichment's
// events included). A full heap stops the emulator taking publishes.
const pubsubHeapPerEntry = 5 << 10

// jvmMaxHeap is the -Xmx of a JVM's options (the last one given), or the
// JVM's default, a quarter of the machine's memory (0 when neither is
// known).
func jvmMaxHeap(opts string, mem uint64) uint64 {
	heap := mem / 4
	for _, o := range strings.Fields(opts) {
		if m := jvmXmx.FindStringSubmatch(o); m != nil {
			if n, err := strconv.ParseUint(m[1], 10, 64); err == nil {
				heap = n << map[string]uint{"": 0, "k": 10, "m": 20, "g": 30, "t": 40}[strings.ToLower(m[2])]
			}
		}
	}
	return heap
}

var jvmXmx = regexp.MustCompile(`^-Xmx([0-9]+)([kKmMgGtT]?)$`)

// pubsubHeap is what the Pub/Sub emulator the load command starts would
// hold of one run's messages (a run deletes its topics when it ends, the
// warm-up's too), and the heap its JVM gets, with envOpts the
// CLOUD_PUBSUB_EMULATOR_OPTS its options are added to.
func (c *LoadCmd) pubsubHeap(mem uint64, envOpts string) (need, heap uint64) {
	entries := float64(c.Backlog)
	if c.Backlog == 0 {
		entries = c.Rate * c.Duration.Seconds()
	}
	return uint64(entries * pubsubHeapPerEntry), jvmMaxHeap(envOpts+" "+c.pubsubJVMOn(mem), mem)
}

// warnOfPubSubHeap warns when a run's messages would fill most of the
// heap of the Pub/Sub emulator the load command starts on a machine of mem
// bytes: the run would then measure the emulator's collector, or an
// emulator that takes no more publishes, and --pubsub-emulator-jvm can give
// it more.
func (c *LoadCmd) warnOfPubSubHeap(e *env, mem uint64) {
	need, heap := c.pubsubHeap(mem, e.getenv("CLOUD_PUBSUB_EMULATOR_OPTS"))
	if heap == 0 || need <= heap/5*4 { // heap 0: the machine's memory is not known
		return
	}
	e.log.Warn("load: the Pub/Sub emulator keeps every message of a run, and this run's would fill most of its heap; a full heap stops it taking publishes. Give it more (--pubsub-emulator-jvm='-Xmx…') or publish less",
		"about_gib", fmt.Sprintf("%.1f", float64(need)/(1<<30)), "heap_gib", fmt.Sprintf("%.1f", float64(heap)/(1<<30)))
}

// backlogJVM is what a Pub/Sub emulator serving a backlog needs on a
// machine of mem bytes: a fixed heap of half of it, a third of that young.
// Serving a backlog, the emulator allocates hundreds of MB a second; with
// its defaults, G1 keeps the young generation near 250 MB to meet its pause
// goal and, with gigabytes of the backlog live, runs a marking cycle every
// few seconds, which stopped the emulator for 11-14 s of a 300,000-entry
// drain and held the drain to 3,300-3,700 entries/s; with these, a median
// of 4,539 over eleven drains of 2026-12-04 (2,563-5,450; the rest is the
// emulator's too: docs/PERFORMANCE.md, "What bounds the rate"). The same
// setting is worse for a steady run, where each young collection copies the
// gigabytes the emulator keeps. The JVM's defaults ("") on a machine too
// small to spare the heap.
func backlogJVM(mem uint64) string {
	heap := math.Round(float64(mem) / 2 / (1 << 30))
	if heap < 3 {
		return ""
	}
	return fmt.Sprintf("-Xms%.0fg -Xmx%.0fg -Xmn%.0fg", heap, heap, math.Round(heap/3))
}

// binary is the executable to run: --binary, or this one.
func (c *LoadCmd) binary() (string, error) {
	if c.Binary != "" {
		return c.Binary, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding this executable (use --binary): %w", err)
	}
	return self, nil
}

// warmUp runs the service steadily at --rate for --warm-emulators against
// emulators the command started, and logs what it measured but reports
// nothing of it: the emulators stand for Google's services, whose costs
// are not the machine's, and a freshly started Pub/Sub emulator spends
// minutes compiling itself (30 s of a run's own warm-up are not enough).
// The service and its log are fresh in every run after, as in the first.
func (c *LoadCmd) warmUp(e *env, g *Globals, emu *loadEmulators, binary, work string) error {
	if c.Warm <= 0 || len(emu.started) == 0 {
		return nil
	}
	w := *c
	w.Backlog, w.Duration, w.Warmup = 0, c.Warm, 0
	if w.Rate*w.Duration.Seconds() > maxAheadEntries {
		w.Generate = "live"
	}
	e.log.Info("load: warming the emulators up, left out of the results", "for", c.Warm.String(), "rate", c.Rate)
	r, err := w.runOnce(e, g, emu, binary, work, "warm", c.Seed+1000)
	if err != nil {
		return fmt.Errorf("warming the emulators up: %w", err)
	}
	e.log.Info("load: warmed the emulators up", "published", r.published, "appended_per_s", math.Round(r.appendedRate),
		"pubsub_cpu_s_per_1000", r.cpuPubSub, "bigtable_cpu_s_per_1000", r.cpuBigtable, "service_cpu_s_per_1000", r.cpuService)
	return nil
}

// runOnce is one run: a fresh project on the emulators (named after label),
// the service, the load of the organization seed makes.
func (c *LoadCmd) runOnce(e *env, g *Globals, emu *loadEmulators, binary, work, label string, seed uint64) (*loadResult, error) {
	run := &loadRun{cmd: c, env: e, globals: g, emu: emu, binary: binary, work: work,
		project: fmt.Sprintf("load-%d-%s", time.Now().Unix(), label), seed: seed}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	return run.measure(ctx)
}
