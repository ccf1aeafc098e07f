package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bqobserver/bqobserver/internal/measure"
)

// restartResult is what a restart after a drained backlog measured: how
// soon the service was ready again, and what its first rebuild found in the
// event log's open-jobs index, from the service's own metrics (NaN for a
// binary that has none).
type restartResult struct {
	readyAfter     time.Duration // from the process's start to /readyz 200
	indexEntries   float64       // entries of the open-jobs index the rebuild read
	running        float64       // jobs listed when it ended
	finished       float64       // entries it found finished and pruned
	rebuildSeconds float64
	peakRSS        int64         // bytes, the most the process was resident with by then
	cpu            time.Duration // the process's CPU time by then
	quietWait      time.Duration // how long the restart waited for the emulators to go quiet; -1 when it did not
	// The CPU the emulators the command started took from the start to
	// ready, each.
	pubsubCPU, bigtableCPU time.Duration
	// The machine's CPU over the same time, shares from 0 to 1 (see
	// measure.Machine): busy running anything, and stolen by the
	// hypervisor.
	machineBusy, machineSteal float64
}

// Waiting for the emulators to go quiet before a restart: at most
// quietWithin, until they take less than quietCPU of a quietWindow.
const (
	quietWithin = time.Minute
	quietWindow = time.Second
	quietCPU    = 100 * time.Millisecond
)

// restart starts the same binary again on the same project once the
// drained service has stopped (serve ends it with SIGTERM, as a platform
// does), as a user restarts it; it measures how soon the new process is
// ready, reads what its first rebuild found, and stops it.
//
// The emulators the command started share the machine's cores with the
// service, and after a drain they may still be collecting the gigabytes it
// left them (cbtemulator's collections take seconds of CPU); Bigtable
// costs a deployment's machine nothing. So the restart first waits, a
// minute at most, until they take less than a tenth of a core, and the
// report gives that wait, the CPU each took while the service started, and
// how busy the machine was meanwhile: a restart that waits on cbtemulator
// shows it serving on its one core.
func (r *loadRun) restart(ctx context.Context, env []string, res *loadResult) (err error) {
	res.restart.quietWait = r.waitQuiet(ctx)
	pubsubBefore, bigtableBefore := r.emulatorCPU("pubsub"), r.emulatorCPU("bigtable")
	machineBefore, _ := measure.MachineCPU() // one not read makes the shares NaN
	start := time.Now()
	svc, err := startLoadService(ctx, r.binary, r.project, r.work, r.project+"-service-restarted.log", env, r.cmd.ServiceFlags)
	if err != nil {
		return fmt.Errorf("restarting the service: %w", err)
	}
	defer func() { err = errors.Join(err, svc.stop()) }()
	ready, err := svc.waitReady(ctx, r.client)
	if err != nil {
		return fmt.Errorf("restarting the service: %w", err)
	}
	res.restart.readyAfter = ready.Sub(start)
	res.restart.cpu = usage(svc.pid).CPU
	machine, _ := measure.MachineCPU()
	res.restart.machineBusy, res.restart.machineSteal = machine.Shares(machineBefore)
	res.restart.pubsubCPU = r.emulatorCPU("pubsub") - pubsubBefore
	res.restart.bigtableCPU = r.emulatorCPU("bigtable") - bigtableBefore
	if res.restart.peakRSS, err = measure.PeakRSS(svc.pid); err != nil {
		return fmt.Errorf("reading the restarted service's peak RSS: %w", err)
	}
	m, err := measure.Scrape(ctx, r.client, svc.base+"/metrics")
	if err != nil {
		return fmt.Errorf("reading the restarted service's metrics: %w", err)
	}
	res.restart.fromMetrics(m)
	r.env.log.Info("load: restarted after the backlog", "ready_after", res.restart.readyAfter.String(),
		"index_entries", res.restart.indexEntries, "running", res.restart.running, "rebuild_seconds", res.restart.rebuildSeconds,
		"peak_rss_mb", res.restart.peakRSS>>20, "cpu", res.restart.cpu.String(),
		"waited_for_quiet_emulators", res.restart.quietWait.String(), "pubsub_emulator_cpu", res.restart.pubsubCPU.String(),
		"cbtemulator_cpu", res.restart.bigtableCPU.String(), "machine_busy", res.restart.machineBusy, "machine_steal", res.restart.machineSteal)
	return nil
}

// waitQuiet waits until the emulators the command started take less than
// quietCPU of a quietWindow, or quietWithin has passed, and returns how
// long it waited; -1 when the command started none (their CPU is not
// known).
func (r *loadRun) waitQuiet(ctx context.Context) time.Duration {
	if len(r.emu.started) == 0 {
		return -1
	}
	start := time.Now()
	prev := r.emulatorsCPU()
	t := time.NewTicker(quietWindow)
	defer t.Stop()
	for time.Since(start) < quietWithin {
		select {
		case <-ctx.Done():
			return time.Since(start)
		case <-t.C:
		}
		cpu := r.emulatorsCPU()
		if cpu-prev < quietCPU {
			break
		}
		prev = cpu
	}
	return time.Since(start)
}

// emulatorsCPU is the CPU time the emulators the command started have
// taken so far.
func (r *loadRun) emulatorsCPU() time.Duration {
	var cpu time.Duration
	for _, p := range r.emu.started {
		cpu += usage(p.PID).CPU
	}
	return cpu
}

// emulatorCPU is the CPU time the emulator name ("pubsub" or "bigtable")
// has taken so far; 0 when the command did not start it.
func (r *loadRun) emulatorCPU(name string) time.Duration {
	return usage(r.emu.pid(name)).CPU
}

// fromMetrics reads the rebuild's gauges (see projections/running).
func (x *restartResult) fromMetrics(m measure.Metrics) {
	x.indexEntries = gaugeOf(m, "bqobserver_running_rebuild_index_entries")
	x.running = gaugeOf(m, "bqobserver_running_rebuild_running_jobs")
	x.finished = gaugeOf(m, "bqobserver_running_rebuild_finished_jobs")
	x.rebuildSeconds = gaugeOf(m, "bqobserver_running_rebuild_seconds")
}

// ofStarted is d in seconds, or NaN when the command started no emulators
// and the restart could not see them.
func (x *restartResult) ofStarted(d time.Duration) float64 {
	if x.quietWait < 0 {
		return math.NaN()
	}
	return d.Seconds()
}

// gaugeOf is the value of the metric name, NaN when the service has none.
func gaugeOf(m measure.Metrics, name string) float64 {
	if _, ok := m[name]; !ok {
		return math.NaN()
	}
	return m.Sum(name)
}
