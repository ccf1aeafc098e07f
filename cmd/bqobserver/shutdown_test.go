package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/bigtable/bttest"
	"google.golang.org/grpc"
)

// hangingBigtable is an in-process Bigtable whose writes never answer: each
// one blocks until its caller gives up, the way a Bigtable does that
// accepts connections but is overloaded or partitioned away. Reads and the
// admin API work.
type hangingBigtable struct {
	addr  string
	calls atomic.Int64
}

func startHangingBigtable(t *testing.T) *hangingBigtable {
	t.Helper()
	h := &hangingBigtable{}
	srv, err := bttest.NewServer("127.0.0.1:0", grpc.ChainStreamInterceptor(
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if info.FullMethod == "/google.bigtable.v2.Bigtable/MutateRows" {
				h.calls.Add(1)
				<-ss.Context().Done()
				return ss.Context().Err()
			}
			return handler(srv, ss)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	h.addr = srv.Addr
	return h
}

// TestShutdownIsBounded stops the service while the event log's writes
// hang, with entries of the simulated organization in flight: run returns
// within --shutdown-timeout and a small slack, whatever the bound. (Without
// one budget, the appender's final flush alone waited for its 10s write
// timeout.)
func TestShutdownIsBounded(t *testing.T) {
	// The slack covers what follows the deadline: cancelling the writes in
	// flight and closing the clients. Measured on a busy 2-core machine
	// (load above 10), with and without -race: 2 to 5 ms over the bound.
	const slack = 500 * time.Millisecond
	for _, bound := range []time.Duration{time.Second, 3 * time.Second} {
		t.Run(bound.String(), func(t *testing.T) {
			bt := startHangingBigtable(t)
			t.Setenv("PUBSUB_EMULATOR_HOST", "")
			t.Setenv("BIGTABLE_EMULATOR_HOST", bt.addr)
			_, stop := startService(t, "--shutdown-timeout", bound.String(), "--simulate-rate", "20")
			waitUntil(t, "a log write to hang", func() bool { return bt.calls.Load() > 0 })
			start := time.Now()
			stop()
			took := time.Since(start)
			t.Logf("bound %v: run returned after %v (%v over)", bound, took, took-bound)
			if took > bound+slack {
				t.Errorf("run returned %v after its stop, beyond the bound %v and the slack %v", took, bound, slack)
			}
		})
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
