package main

import (
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"
)

// LimitFlags are the run command's bounds on memory and time, and its
// diagnostics.
type LimitFlags struct {
	Pprof bool `help:"Serve Go's profiles at /debug/pprof/ (go tool pprof http://ADDR/debug/pprof/heap). Off by default: profiles show the process's internals."`
}

// mountPprof serves the profiles under /debug/pprof/ when --pprof is set.
func (f *LimitFlags) mountPprof(mux *http.ServeMux) {
	if !f.Pprof {
		return
	}
	// Sample one blocking event per 10 µs blocked and one contended
	// lock in 100, so that the block and mutex profiles say where
	// goroutines wait.
	runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	runtime.SetMutexProfileFraction(100)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
