package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/bqobserver/bqobserver/internal/emulator"
)

// loadEmulators are the emulators of the load runs.
type loadEmulators struct {
	pubsub, bigtable string // host:port
	// started are the emulators the load command started (and stops); none
	// when they come from the environment.
	started []*emulator.Process
}

// openEmulators takes the emulators from the environment or starts a pair
// (its logs in work), as --emulators says. A started pair serves one run,
// or every run with --no-fresh-emulators (each run in a project of its
// own): a freshly started Pub/Sub emulator spends its first minutes
// compiling itself, which LoadCmd.warmUp absorbs before the pair's first
// run.
//
// Both keep in memory everything a run sends them, the Pub/Sub emulator
// every message, acknowledged ones included, until its topic goes; so
// their collectors work harder the longer a run lasts, and take the CPU
// of the two cores the service shares with them. A started pair runs with
// --pubsub-emulator-jvm and --cbtemulator-gogc, and logs its collections
// for the report (see emulator.Process.GC).
func (c *LoadCmd) openEmulators(e *env, work string) (*loadEmulators, error) {
	ps, bt, fromEnv := c.emulatorsFromEnv(e)
	switch {
	case fromEnv && (ps == "" || bt == ""):
		return nil, errors.New("--emulators env needs PUBSUB_EMULATOR_HOST and BIGTABLE_EMULATOR_HOST")
	case fromEnv:
		return &loadEmulators{pubsub: ps, bigtable: bt}, nil
	}
	return c.startEmulators(e, work)
}

// emulatorsFromEnv says whether --emulators takes the emulators from the
// environment rather than starting them, with the addresses it gives.
func (c *LoadCmd) emulatorsFromEnv(e *env) (pubsub, bigtable string, fromEnv bool) {
	ps, bt := e.getenv("PUBSUB_EMULATOR_HOST"), e.getenv("BIGTABLE_EMULATOR_HOST")
	return ps, bt, c.Emulators == "env" || c.Emulators == "auto" && ps != "" && bt != ""
}

// startEmulators starts a pair from the gcloud SDK. If either fails to
// start, the one already started is stopped.
func (c *LoadCmd) startEmulators(e *env, work string) (_ *loadEmulators, err error) {
	sdk := c.GcloudSDK
	if sdk == "" {
		if sdk, err = emulator.SDKRoot(e.ctx); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("making the emulators' log directory: %w", err)
	}
	m := &loadEmulators{}
	defer func() {
		if err != nil {
			m.close(e.log)
		}
	}()
	for _, start := range []func(context.Context) (*emulator.Process, error){
		func(ctx context.Context) (*emulator.Process, error) {
			return emulator.StartPubSub(ctx, sdk, work, c.pubsubJVM())
		},
		func(ctx context.Context) (*emulator.Process, error) {
			return emulator.StartBigtable(ctx, sdk, work, emulator.GoRuntime{GOGC: c.BigtableGOGC, GOMAXPROCS: c.BigtableProcs, GOMEMLIMIT: c.BigtableLimit})
		},
	} {
		p, err := start(e.ctx)
		if err != nil {
			return nil, err
		}
		m.started = append(m.started, p)
	}
	m.pubsub, m.bigtable = m.started[0].Addr, m.started[1].Addr
	e.log.Info("load: emulators started", "pubsub", m.pubsub, "bigtable", m.bigtable)
	return m, nil
}

// pid is the process of the emulator named ("pubsub", "bigtable"), or 0
// when the run did not start it.
func (m *loadEmulators) pid(name string) int {
	for _, p := range m.started {
		if p.Name == name {
			return p.PID
		}
	}
	return 0
}

// gc is what the collectors of the emulators the command started have
// logged so far. An emulator whose log cannot be read is left out, with a
// warning: the run's other measurements stand.
func (m *loadEmulators) gc(log *slog.Logger) emulatorGC {
	var g emulatorGC
	for _, p := range m.started {
		evs, err := p.GC()
		if err != nil {
			log.Warn("load: reading an emulator's GC log", "emulator", p.Name, "error", err.Error())
			continue
		}
		if evs == nil {
			evs = []emulator.GCEvent{} // started, and no collection yet
		}
		switch p.Name {
		case "pubsub":
			g.pubsub = evs
		case "bigtable":
			g.bigtable = evs
		}
	}
	return g
}

// close stops the emulators the run started.
func (m *loadEmulators) close(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, p := range m.started {
		if err := p.Stop(ctx); err != nil {
			log.Warn("load: stopping an emulator", "error", fmt.Sprint(err))
		}
	}
	m.started = nil
}
