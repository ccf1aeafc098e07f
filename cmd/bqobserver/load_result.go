package main

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/procfs"

	"github.com/bqobserver/bqobserver/internal/emulator"
	"github.com/bqobserver/bqobserver/internal/measure"
)

// loadResult is what one load run measured.
type loadResult struct {
	loadBefore, loadAfter float64 // the machine's 1-minute load average
	startedEmulators      bool
	start                 time.Time
	readyAfter            time.Duration // from start to /readyz 200
	published             int
	preloadTime           time.Duration // backlog: how long publishing it took
	from, to              time.Time     // the window the rates, CPU and collections cover
	// until is when the window of lag and memory ends, from from: when the
	// service had settled what was published (for a steady run, after to:
	// the entries published last settle last, and the slowest of them
	// when it falls behind), or when the run stopped waiting for it; zero:
	// to.
	until time.Time
	// caughtUp is, for a steady run, the seconds from the end of
	// publishing until the service had settled it all: +Inf when it had
	// not within settleWithin, NaN when the run was cut short first.
	caughtUp  float64
	freshness freshnessResult
	// The samples the run took, and those that failed, with the last
	// failure.
	sampled, sampleFailures int
	sampleErr               string
	// problems are why the run's figures are not what they claim (it did
	// not catch up, its window held too few samples); the report flags
	// the run with them.
	problems []string

	window                                         time.Duration
	inRate, settledRate, appendedRate, skippedRate float64 // entries a second
	deadLettered, handedBack                       float64
	// Lag, in seconds. A max is the larger of the oldest-unprocessed
	// gauge's samples and the bound of the lag histogram's highest
	// non-empty bucket: the gauge, sampled once a second, misses the
	// bursts between samples, and no entry took longer than that bound.
	ingestP50, ingestP99, ingestMax float64
	feedP50, feedP99, feedMax       float64
	logWriteP50, logWriteP99        float64 // seconds, one write of a batch to the event log
	pruned                          float64 // jobs the live feed pruned from the open-jobs index
	rssMax, heapMax                 float64 // bytes
	pubsubRSSMax, bigtableRSSMax    float64 // bytes; NaN for an emulator the run did not start
	// The emulators' collectors over the window (see emulator.GC), NaN
	// for an emulator the run did not start: the Pub/Sub emulator's
	// pauses and its longest, and cbtemulator's collections' CPU; seconds.
	pubsubPauses, pubsubLongestPause, bigtableGCCPU float64
	cpuService, cpuPubSub, cpuBigtable, cpuLoad     float64 // CPU seconds per 1,000 settled entries
	// The machine's CPU over the window, shares from 0 to 1 of all its
	// cores: busy running anything, and stolen by the hypervisor (a
	// shared host's other guests).
	machineBusy, machineSteal float64
	// machineOther is the machine's busy CPU over the window less what
	// the service, the emulators the command started and the load command
	// took: everything else's work, the emulators of the environment's
	// included; a share of all its cores.
	machineOther float64
	timeline     []loadRow
	restart      restartResult // backlog: the restart after the drain
}

// loadRow is one row of a run's timeline: the rates and state over the
// interval that ends at at (from the service's start).
type loadRow struct {
	at                       time.Duration
	in, appended, skipped    float64 // a second
	ingestOldest, feedOldest float64 // seconds, at the row's end
	logWriteP99              float64 // seconds, over the row's interval; NaN without writes
	rss, heap                float64 // bytes
	cpu                      float64 // service CPU, percent of one core
	machineBusy, steal       float64 // percent of all the machine's cores; NaN when not read
	bigtableRSS              float64 // bytes at the row's end; NaN for a cbtemulator the run did not start
	pubsubPauses             float64 // seconds the Pub/Sub emulator's collector paused it; NaN when not started
	bigtableGCCPU            float64 // CPU seconds of cbtemulator's collections that began in the row; NaN when not started
}

// emulatorGC is what the collectors of the emulators the run started
// logged (nil for one it did not start).
type emulatorGC struct {
	pubsub, bigtable []emulator.GCEvent
}

// gcIn sums the events from from (exclusive) to to (inclusive): their
// pauses, the longest, and their CPU; NaN for an emulator not started.
func gcIn(evs []emulator.GCEvent, from, to time.Time) (pauses, longest, cpu float64) {
	if evs == nil {
		return math.NaN(), math.NaN(), math.NaN()
	}
	for _, e := range evs {
		if e.At.After(from) && !e.At.After(to) {
			pauses, cpu = pauses+e.Pause.Seconds(), cpu+e.CPU.Seconds()
			longest = max(longest, e.Pause.Seconds())
		}
	}
	return pauses, longest, cpu
}

// minSamples is the fewest samples a window needs to measure anything.
const minSamples = 2

// compute derives the result from the run's samples: the rates, CPU, the
// emulators' collections and the machine's shares over [from, to], lag and
// memory over [from, until]. A window of fewer than minSamples measures
// nothing: its figures are NaN and the run is flagged.
func (r *loadResult) compute(samples []loadSample, gc emulatorGC, interval time.Duration) {
	r.timeline = timeline(samples, gc, r.start, interval)
	until := r.until
	if until.IsZero() {
		until = r.to
	}
	in, lagged := window(samples, r.from, r.to), window(samples, r.from, until)
	if len(in) < minSamples || len(lagged) < minSamples {
		r.unmeasured()
		r.problems = append(r.problems, fmt.Sprintf("had %d samples in its window (%d failed in the run), fewer than the %d it needs: nothing in the window was measured",
			min(len(in), len(lagged)), r.sampleFailures, minSamples))
		return
	}
	r.rates(in[0], in[len(in)-1], gc)
	r.lags(lagged)
}

// rates computes the rates, CPU, collections and machine shares between
// samples a and b.
func (r *loadResult) rates(a, b loadSample, gc emulatorGC) {
	r.window = b.at.Sub(a.at)
	secs := r.window.Seconds()
	settled := b.settled() - a.settled()
	r.inRate, r.settledRate = (b.published-a.published)/secs, settled/secs
	r.appendedRate, r.skippedRate = (b.appended-a.appended)/secs, (b.skipped-a.skipped)/secs
	r.deadLettered, r.handedBack = b.deadLettered-a.deadLettered, b.handedBack-a.handedBack
	r.pruned = b.pruned - a.pruned
	writes := b.logWrite.Sub(a.logWrite)
	r.logWriteP50, r.logWriteP99 = writes.Quantile(0.5), writes.Quantile(0.99)
	per := func(x, y time.Duration) float64 {
		if y == 0 { // a process the run did not start, and cannot see
			return math.NaN()
		}
		return (y - x).Seconds() / (settled / 1000)
	}
	r.cpuService, r.cpuPubSub = per(a.service.CPU, b.service.CPU), per(a.pubsub.CPU, b.pubsub.CPU)
	r.cpuBigtable, r.cpuLoad = per(a.bigtable.CPU, b.bigtable.CPU), per(a.load.CPU, b.load.CPU)
	r.machineBusy, r.machineSteal = b.machine.Shares(a.machine)
	measured := b.service.CPU - a.service.CPU + b.pubsub.CPU - a.pubsub.CPU + b.bigtable.CPU - a.bigtable.CPU + b.load.CPU - a.load.CPU
	r.machineOther = b.machine.Other(a.machine, measured)
	r.pubsubPauses, r.pubsubLongestPause, _ = gcIn(gc.pubsub, a.at, b.at)
	_, _, r.bigtableGCCPU = gcIn(gc.bigtable, a.at, b.at)
}

// lags computes the lag and memory over samples.
func (r *loadResult) lags(in []loadSample) {
	a, b := in[0], in[len(in)-1]
	ingest, feed := b.ingestLag.Sub(a.ingestLag), b.feedLag.Sub(a.feedLag)
	r.ingestP50, r.ingestP99 = ingest.Quantile(0.5), ingest.Quantile(0.99)
	r.feedP50, r.feedP99 = feed.Quantile(0.5), feed.Quantile(0.99)
	r.ingestMax, r.feedMax = nanMax(ingest.Ceiling()), nanMax(feed.Ceiling())
	for _, s := range in {
		r.ingestMax, r.feedMax = math.Max(r.ingestMax, s.ingestOldest), math.Max(r.feedMax, s.feedOldest)
		r.rssMax, r.heapMax = math.Max(r.rssMax, float64(s.service.RSS)), math.Max(r.heapMax, s.heap)
	}
	r.pubsubRSSMax, r.bigtableRSSMax = rssMax(in, func(s *loadSample) measure.Usage { return s.pubsub }),
		rssMax(in, func(s *loadSample) measure.Usage { return s.bigtable })
}

// nanMax is v, or 0 for NaN: a start for a maximum.
func nanMax(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

// unmeasured sets every figure of the window to NaN.
func (r *loadResult) unmeasured() {
	nan := math.NaN()
	r.window = 0
	for _, f := range []*float64{&r.inRate, &r.settledRate, &r.appendedRate, &r.skippedRate, &r.deadLettered, &r.handedBack,
		&r.ingestP50, &r.ingestP99, &r.ingestMax, &r.feedP50, &r.feedP99, &r.feedMax, &r.logWriteP50, &r.logWriteP99,
		&r.pruned, &r.rssMax, &r.heapMax, &r.pubsubRSSMax, &r.bigtableRSSMax, &r.pubsubPauses, &r.pubsubLongestPause,
		&r.bigtableGCCPU, &r.cpuService, &r.cpuPubSub, &r.cpuBigtable, &r.cpuLoad, &r.machineBusy, &r.machineSteal, &r.machineOther} {
		*f = nan
	}
}

// settle records how waitSettled ended for a steady run whose publishing
// ended at r.to: the seconds until the service had caught up (0 when it
// had before the publisher's last confirmation came back), +Inf and a
// flag when it had not within settleWithin, NaN and a flag when the run
// was cut short first. Lag and memory are measured up to then.
func (r *loadResult) settle(at time.Time, err error) {
	r.until = r.to
	if at.After(r.to) {
		r.until = at
	}
	switch {
	case err == nil:
		r.caughtUp = max(at.Sub(r.to).Seconds(), 0)
	case errors.Is(err, errNotSettled):
		r.caughtUp = math.Inf(1)
		r.problems = append(r.problems, fmt.Sprintf("did not catch up within %.0f s of the end of publishing (%v); its lag and memory are up to then, without the entries still waiting",
			settleWithin.Seconds(), err))
	default:
		r.caughtUp = math.NaN()
		r.problems = append(r.problems, fmt.Sprintf("was cut short while waiting for the service to catch up (%v)", err))
	}
}

// rssMax is the largest RSS of one process over samples, NaN if no sample
// saw it (a process the run did not start).
func rssMax(samples []loadSample, of func(*loadSample) measure.Usage) float64 {
	var m measure.Usage
	for i := range samples {
		m.RSS = max(m.RSS, of(&samples[i]).RSS)
	}
	return rssOf(m)
}

// rssOf is u's RSS in bytes, NaN for a process not seen.
func rssOf(u measure.Usage) float64 {
	if u.RSS == 0 {
		return math.NaN()
	}
	return float64(u.RSS)
}

// window is the samples taken from from to to.
func window(samples []loadSample, from, to time.Time) []loadSample {
	var in []loadSample
	for _, s := range samples {
		if !s.at.Before(from) && !s.at.After(to) {
			in = append(in, s)
		}
	}
	return in
}

// timeline is one row per interval from start, and a shorter last row
// for the samples after the last full interval; a last sample less than a
// second after the row before it (the run's closing sample) makes no row of
// its own, whose rates would say nothing.
func timeline(samples []loadSample, gc emulatorGC, start time.Time, interval time.Duration) []loadRow {
	var rows []loadRow
	prev := -1
	for i, s := range samples {
		if prev >= 0 {
			since := s.at.Sub(samples[prev].at)
			if since < interval && i < len(samples)-1 || since < time.Second {
				continue
			}
		}
		if prev >= 0 {
			rows = append(rows, row(samples[prev], s, gc, start))
		}
		prev = i
	}
	return rows
}

func row(a, b loadSample, gc emulatorGC, start time.Time) loadRow {
	secs := b.at.Sub(a.at).Seconds()
	pauses, _, _ := gcIn(gc.pubsub, a.at, b.at)
	_, _, gcCPU := gcIn(gc.bigtable, a.at, b.at)
	busy, steal := b.machine.Shares(a.machine)
	return loadRow{
		at: b.at.Sub(start).Round(time.Second),
		in: (b.published - a.published) / secs, appended: (b.appended - a.appended) / secs, skipped: (b.skipped - a.skipped) / secs,
		ingestOldest: b.ingestOldest, feedOldest: b.feedOldest, logWriteP99: b.logWrite.Sub(a.logWrite).Quantile(0.99),
		rss: float64(b.service.RSS), heap: b.heap,
		cpu:         100 * (b.service.CPU - a.service.CPU).Seconds() / secs,
		machineBusy: 100 * busy, steal: 100 * steal,
		bigtableRSS: rssOf(b.bigtable), pubsubPauses: pauses, bigtableGCCPU: gcCPU,
	}
}

// loadAverage is the machine's 1-minute load average, NaN if unknown.
func loadAverage() float64 {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return math.NaN()
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return math.NaN()
	}
	return l.Load1
}
