package main

import (
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
	from, to              time.Time     // the window the rates cover
	caughtUp              time.Duration // steady: from the end of publishing until all settled; 0 if not within 2m
	freshness             freshnessResult

	window                                         time.Duration
	inRate, settledRate, appendedRate, skippedRate float64 // entries a second
	deadLettered, handedBack                       float64
	ingestP50, ingestP99, ingestMax                float64 // seconds
	feedP50, feedP99, feedMax                      float64
	logWriteP50, logWriteP99                       float64 // seconds, one write of a batch to the event log
	pruned                                         float64 // jobs the live feed pruned from the open-jobs index
	rssMax, heapMax                                float64 // bytes
	pubsubRSSMax, bigtableRSSMax                   float64 // bytes; NaN for an emulator the run did not start
	// The emulators' collectors over the window (see emulator.GC), NaN
	// for an emulator the run did not start: the Pub/Sub emulator's
	// pauses and its longest, and cbtemulator's collections' CPU; seconds.
	pubsubPauses, pubsubLongestPause, bigtableGCCPU float64
	cpuService, cpuPubSub, cpuBigtable, cpuLoad     float64 // CPU seconds per 1,000 settled entries
	// The machine's CPU over the window, shares from 0 to 1 of all its
	// cores: busy running anything, and stolen by the hypervisor (a
	// shared host's other guests).
	machineBusy, machineSteal float64
	timeline                  []loadRow
	restart                   restartResult // backlog: the restart after the drain
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

// compute derives the result from the run's samples.
func (r *loadResult) compute(samples []loadSample, gc emulatorGC, interval time.Duration) {
	in := window(samples, r.from, r.to)
	if len(in) < 2 {
		return
	}
	a, b := in[0], in[len(in)-1]
	r.window = b.at.Sub(a.at)
	secs := r.window.Seconds()
	settled := b.settled() - a.settled()
	r.inRate, r.settledRate = (b.published-a.published)/secs, settled/secs
	r.appendedRate, r.skippedRate = (b.appended-a.appended)/secs, (b.skipped-a.skipped)/secs
	r.deadLettered, r.handedBack = b.deadLettered-a.deadLettered, b.handedBack-a.handedBack
	r.pruned = b.pruned - a.pruned
	ingest, feed := b.ingestLag.Sub(a.ingestLag), b.feedLag.Sub(a.feedLag)
	r.ingestP50, r.ingestP99 = ingest.Quantile(0.5), ingest.Quantile(0.99)
	r.feedP50, r.feedP99 = feed.Quantile(0.5), feed.Quantile(0.99)
	writes := b.logWrite.Sub(a.logWrite)
	r.logWriteP50, r.logWriteP99 = writes.Quantile(0.5), writes.Quantile(0.99)
	for _, s := range in {
		r.ingestMax, r.feedMax = math.Max(r.ingestMax, s.ingestOldest), math.Max(r.feedMax, s.feedOldest)
		r.rssMax, r.heapMax = math.Max(r.rssMax, float64(s.service.RSS)), math.Max(r.heapMax, s.heap)
	}
	r.pubsubRSSMax, r.bigtableRSSMax = rssMax(in, func(s *loadSample) measure.Usage { return s.pubsub }),
		rssMax(in, func(s *loadSample) measure.Usage { return s.bigtable })
	per := func(x, y time.Duration) float64 {
		if y == 0 { // a process the run did not start, and cannot see
			return math.NaN()
		}
		return (y - x).Seconds() / (settled / 1000)
	}
	r.cpuService, r.cpuPubSub = per(a.service.CPU, b.service.CPU), per(a.pubsub.CPU, b.pubsub.CPU)
	r.cpuBigtable, r.cpuLoad = per(a.bigtable.CPU, b.bigtable.CPU), per(a.load.CPU, b.load.CPU)
	r.machineBusy, r.machineSteal = b.machine.Shares(a.machine)
	r.pubsubPauses, r.pubsubLongestPause, _ = gcIn(gc.pubsub, a.at, b.at)
	_, _, r.bigtableGCCPU = gcIn(gc.bigtable, a.at, b.at)
	r.timeline = timeline(samples, gc, r.start, interval)
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
