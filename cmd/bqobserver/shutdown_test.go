package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/bigtable"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bqobserver/bqobserver/internal/bttest"
	"github.com/bqobserver/bqobserver/internal/pstest"
	"github.com/bqobserver/bqobserver/internal/testutil/pubsubtest"
)

// hangingBigtable is an in-process Bigtable whose writes never answer: each
// one blocks until its caller gives up, the way a Bigtable does that
// accepts connections but is overloaded or partitioned away. Reads and the
// admin API work unless hangReads or hangAdmin is set.
type hangingBigtable struct {
	addr  string
	calls atomic.Int64
	// answering lets writes through until it is set false; it starts
	// false.
	answering atomic.Bool
	// hangReads makes reads of rows hang too while it is set.
	hangReads atomic.Bool
	// hangAdmin makes the admin API's calls hang while it is set.
	hangAdmin atomic.Bool
}

func startHangingBigtable(t *testing.T) *hangingBigtable {
	t.Helper()
	h := &hangingBigtable{}
	srv, err := bttest.NewServer("127.0.0.1:0", grpc.ChainStreamInterceptor(
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if info.FullMethod == "/google.bigtable.v2.Bigtable/MutateRows" && !h.answering.Load() ||
				info.FullMethod == "/google.bigtable.v2.Bigtable/ReadRows" && h.hangReads.Load() {
				h.calls.Add(1)
				<-ss.Context().Done()
				return ss.Context().Err()
			}
			return handler(srv, ss)
		}), grpc.ChainUnaryInterceptor(
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if strings.HasPrefix(info.FullMethod, "/google.bigtable.admin.v2.") && h.hangAdmin.Load() {
				h.calls.Add(1)
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return handler(ctx, req)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	h.addr = srv.Addr
	return h
}

// commandOnHangingBigtable points the clients of a command at a
// hangingBigtable that answers until told otherwise and at an in-process
// Pub/Sub, through the environment the clients read, and returns the
// Bigtable and the Pub/Sub's address.
func commandOnHangingBigtable(t *testing.T) (*hangingBigtable, string) {
	t.Helper()
	bt := startHangingBigtable(t)
	bt.answering.Store(true)
	ps := pstest.NewServer()
	t.Cleanup(func() { ps.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", ps.Addr)
	t.Setenv("BIGTABLE_EMULATOR_HOST", bt.addr)
	return bt, ps.Addr
}

// TestSetupIsBounded runs setup on a Bigtable whose admin API does not
// answer: it fails within schemaTimeout, saying why, instead of waiting
// for ever (the service's start applies the same schema).
func TestSetupIsBounded(t *testing.T) {
	bt, _ := commandOnHangingBigtable(t)
	bt.hangAdmin.Store(true)
	defer func(d time.Duration) { schemaTimeout = d }(schemaTimeout)
	schemaTimeout = 300 * time.Millisecond
	var stderr strings.Builder
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // without a bound, setup would wait for ever
	defer cancel()
	start := time.Now()
	code := runContext(ctx, []string{"setup", "--project", "hanging"}, strings.NewReader(""), &stderr, &stderr, os.Getenv)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("setup on an admin API that does not answer took %s, want about its bound of %s", took, schemaTimeout)
	}
	if code == 0 || !strings.Contains(stderr.String(), "setting up Bigtable") || !strings.Contains(stderr.String(), "deadline exceeded") {
		t.Errorf("setup exited with %d, want a failure that names Bigtable's deadline; stderr:\n%s", code, stderr.String())
	}
	if bt.calls.Load() == 0 {
		t.Error("no admin call reached the hanging Bigtable")
	}
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

// TestRunThatCannotListenStops: the running-jobs feed starts while the
// rest of the service is still being built; when a later part fails (here
// its address is taken), run exits with that error, the feed and the
// projection stop with the rest well within the shutdown budget, and no
// replica subscription is left behind.
func TestRunThatCannotListenStops(t *testing.T) {
	_, psAddr := commandOnHangingBigtable(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	var stderr strings.Builder
	code := runContext(t.Context(), []string{"run", "--no-simulate", "--http-addr", taken.Addr().String(), "--shutdown-timeout", "5s"},
		strings.NewReader(""), &stderr, &stderr, os.Getenv)
	if code == 0 || !strings.Contains(stderr.String(), "listening on") {
		t.Fatalf("run exited with %d, want a failure to listen; stderr:\n%s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "deadline exceeded") {
		t.Errorf("a part of the service outlived the shutdown budget; stderr:\n%s", stderr.String())
	}
	c := pubsubtest.Client(t, psAddr, localProject)
	it := c.SubscriptionAdminClient.ListSubscriptions(t.Context(), &pubsubpb.ListSubscriptionsRequest{Project: "projects/" + localProject})
	for s, err := it.Next(); err == nil; s, err = it.Next() {
		if strings.Contains(s.Name, "/bqobserver-running-") {
			t.Errorf("replica subscription %s outlived the failed start", s.Name)
		}
	}
}

// TestListenOnPORT runs the service the way Cloud Run does: no
// --http-addr, and PORT set (to 0 here, for a free port): it listens on every
// interface, on that port (which --auth=none allows only when told to).
func TestListenOnPORT(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("BIGTABLE_EMULATOR_HOST", "")
	t.Setenv("BQOBSERVER_HTTP_ADDR", "")
	t.Setenv("PORT", "0")
	addr, stop := startRun(t, "run", "--no-simulate", "--allow-unauthenticated")
	defer stop()
	host, port, err := net.SplitHostPort(strings.TrimPrefix(addr, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		t.Errorf("the service listens on %s, want every interface", addr)
	}
	resp, err := http.Get("http://127.0.0.1:" + port + "/healthz")
	if err != nil {
		t.Fatalf("the service does not answer on port %s: %v", port, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz answered %d, want 200", resp.StatusCode)
	}
}

func TestHTTPAddr(t *testing.T) {
	tests := []struct {
		name, flag, port, want string
	}{
		{"nothing set: loopback", "", "", "127.0.0.1:8080"},
		{"PORT: every interface", "", "9000", ":9000"},
		{"the flag wins over PORT", "127.0.0.1:7000", "9000", "127.0.0.1:7000"},
		{"the flag alone", "0.0.0.0:8081", "", "0.0.0.0:8081"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"PORT": tt.port}
			if got := httpAddr(tt.flag, func(k string) string { return env[k] }); got != tt.want {
				t.Errorf("httpAddr = %q, want %q", got, tt.want)
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

// TestStartBttestGCIsBounded: the call that starts the in-process
// Bigtable's garbage collection fails within schemaTimeout when the admin
// API does not answer, as the schema before it does, instead of holding
// the start.
func TestStartBttestGCIsBounded(t *testing.T) {
	bt, _ := commandOnHangingBigtable(t) // the client follows BIGTABLE_EMULATOR_HOST
	bt.hangAdmin.Store(true)
	defer func(d time.Duration) { schemaTimeout = d }(schemaTimeout)
	schemaTimeout = 200 * time.Millisecond
	admin, err := bigtable.NewAdminClient(t.Context(), localProject, localInstance, localOptions(bt.addr)...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second) // the bound the call would otherwise lack
	defer cancel()
	err = startBttestGC(ctx, admin, "bqobserver-events")
	if !errors.Is(err, context.DeadlineExceeded) && status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("startBttestGC = %v, want a deadline error", err)
	}
	if ctx.Err() != nil {
		t.Errorf("startBttestGC waited for its caller's context, not for schemaTimeout: %v", err)
	}
}

// TestFailureOutlivedByAGoroutine: a component that fails stops the
// service; when another one outlives the shutdown budget, the failure that
// stopped the service is still logged when it happens and returned by
// stop, beside the budget's end.
func TestFailureOutlivedByAGoroutine(t *testing.T) {
	logs := &syncWriter{w: &strings.Builder{}}
	log := slog.New(slog.NewTextHandler(logs, nil))
	l := newLifecycle(t.Context(), log, 100*time.Millisecond)
	stuck := make(chan struct{})
	defer close(stuck)
	l.start("ingest", func(context.Context) error { return errors.New("its subscription ended") })
	l.start("slow", func(context.Context) error { <-stuck; return nil })
	l.run()
	err := l.stop()
	if err == nil || !strings.Contains(err.Error(), "ingest: its subscription ended") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stop: %v, want the ingest failure and the budget's end", err)
	}
	if !strings.Contains(logs.String(), "ingest: its subscription ended") {
		t.Errorf("the failure was not logged:\n%s", logs.String())
	}
}

// syncWriter is a writer goroutines may share.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.(fmt.Stringer).String()
}

// TestRequestsInFlightAtShutdown: a request in flight when the shutdown
// starts finishes, as --shutdown-timeout's help says (a push delivery's
// append, a cancel request's call to BigQuery); one that outlives the
// budget sees its context end, and the shutdown keeps its bound.
func TestRequestsInFlightAtShutdown(t *testing.T) {
	for _, tc := range []struct {
		name   string
		takes  time.Duration
		budget time.Duration
		want   string
	}{
		{"within the budget", 300 * time.Millisecond, 5 * time.Second, "finished"},
		{"beyond the budget", time.Minute, 300 * time.Millisecond, "context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, sigterm := context.WithCancel(t.Context())
			l := newLifecycle(ctx, slog.New(slog.DiscardHandler), tc.budget)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			started := make(chan struct{})
			outcome := make(chan string, 1)
			srv := newHTTPServer(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(started)
				select {
				case <-time.After(tc.takes):
					outcome <- "finished"
				case <-r.Context().Done():
					outcome <- r.Context().Err().Error()
				}
			}), slog.New(slog.DiscardHandler))
			l.start("HTTP server", srv.serve)
			l.onStop("HTTP server", srv.shutdown)
			go func() { <-started; sigterm() }()
			go func() {
				if resp, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
					resp.Body.Close()
				}
			}()
			l.run()
			start := time.Now()
			l.stop()
			if took := time.Since(start); took > tc.budget+time.Second {
				t.Errorf("the shutdown took %s, beyond its budget %s", took, tc.budget)
			}
			select {
			case got := <-outcome:
				if got != tc.want {
					t.Errorf("the request in flight at shutdown: %s, want %s", got, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Error("the request in flight at shutdown never ended")
			}
		})
	}
}
