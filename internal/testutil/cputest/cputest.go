// Package cputest reads the CPU time a benchmark's process has used, for a
// CPU time per operation: on a shared machine, what an operation costs
// rather than how long it waited for a core.
package cputest

import (
	"os"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/internal/measure"
)

// Used returns the CPU time (user and system) this process has used so
// far, in the clock ticks of /proc (10 ms): measure a loop of seconds. It
// fails tb if /proc cannot be read.
func Used(tb testing.TB) time.Duration {
	tb.Helper()
	u, err := measure.ProcessUsage(os.Getpid())
	if err != nil {
		tb.Fatal(err)
	}
	return u.CPU
}
