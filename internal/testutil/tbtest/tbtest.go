// Package tbtest is a testing.TB that records what a test helper did to the
// test it was given (errors, logs, a skip, a fatal failure), so that the
// helpers of internal/testutil can be tested for failing when they should.
package tbtest

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// Outcome is how a function run by Run ended.
type Outcome struct {
	// Errors are the messages of Error and Errorf calls, in order.
	Errors []string
	// Fatal is the message of the Fatal or Fatalf call that stopped it.
	Fatal string
	// Skipped is the message of the Skip or Skipf call that stopped it.
	Skipped string
	// Logs are the messages of Log and Logf calls, in order.
	Logs []string
}

// TB records calls. Skip, Fatal and their variants stop the function under
// test as the real ones stop a test, with runtime.Goexit. Methods it does
// not implement panic.
type TB struct {
	testing.TB // nil: anything not recorded panics
	real       testing.TB
	mu         sync.Mutex
	got        Outcome
	cleanups   []func()
}

// Run calls fn with a recording TB on a goroutine of its own, then the
// cleanups fn registered, last first, and returns how it ended. The real
// test t supplies the name, context and directories.
func Run(t testing.TB, fn func(tb testing.TB)) Outcome {
	t.Helper()
	tb := &TB{real: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer tb.cleanup()
		fn(tb)
	}()
	<-done
	return tb.got
}

func (tb *TB) record(to *[]string, msg string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	*to = append(*to, msg)
}

func (tb *TB) stop(to *string, msg string) {
	tb.mu.Lock()
	*to = msg
	tb.mu.Unlock()
	runtime.Goexit()
}

// Helper does nothing.
func (tb *TB) Helper() {}

// Error records an error.
func (tb *TB) Error(args ...any) { tb.record(&tb.got.Errors, fmt.Sprint(args...)) }

// Errorf records an error.
func (tb *TB) Errorf(format string, a ...any) { tb.record(&tb.got.Errors, fmt.Sprintf(format, a...)) }

// Log records a log line.
func (tb *TB) Log(args ...any) { tb.record(&tb.got.Logs, fmt.Sprint(args...)) }

// Logf records a log line.
func (tb *TB) Logf(format string, a ...any) { tb.record(&tb.got.Logs, fmt.Sprintf(format, a...)) }

// Fatal records a fatal failure and stops the function under test.
func (tb *TB) Fatal(args ...any) { tb.stop(&tb.got.Fatal, fmt.Sprint(args...)) }

// Fatalf records a fatal failure and stops the function under test.
func (tb *TB) Fatalf(format string, a ...any) { tb.stop(&tb.got.Fatal, fmt.Sprintf(format, a...)) }

// Skip records a skip and stops the function under test.
func (tb *TB) Skip(args ...any) { tb.stop(&tb.got.Skipped, fmt.Sprint(args...)) }

// Skipf records a skip and stops the function under test.
func (tb *TB) Skipf(format string, a ...any) { tb.stop(&tb.got.Skipped, fmt.Sprintf(format, a...)) }

// Name returns the real test's name.
func (tb *TB) Name() string { return tb.real.Name() }

// TempDir returns a temporary directory of the real test.
func (tb *TB) TempDir() string { return tb.real.TempDir() }

// ArtifactDir returns the real test's artifact directory.
func (tb *TB) ArtifactDir() string { return tb.real.ArtifactDir() }

// Context returns the real test's context.
func (tb *TB) Context() context.Context { return tb.real.Context() }

// Cleanup registers f to run when the function under test has returned.
func (tb *TB) Cleanup(f func()) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.cleanups = append(tb.cleanups, f)
}

// Failed reports whether Error, Errorf, Fatal or Fatalf was called.
func (tb *TB) Failed() bool {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return len(tb.got.Errors) > 0 || tb.got.Fatal != ""
}

func (tb *TB) cleanup() {
	tb.mu.Lock()
	fs := slices.Clone(tb.cleanups)
	tb.mu.Unlock()
	for _, f := range slices.Backward(fs) {
		f()
	}
}
