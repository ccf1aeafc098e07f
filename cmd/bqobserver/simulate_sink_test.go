package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bqobserver/bqobserver/internal/simulation"
	"github.com/bqobserver/bqobserver/internal/testutil/pubsubtest"
)

// failFirst fails the first n publishes with Unavailable.
type failFirst struct{ n, calls atomic.Int64 }

func (f *failFirst) React(any) (bool, any, error) {
	if f.calls.Add(1) <= f.n.Load() {
		return true, nil, status.Error(codes.Unavailable, "the emulator is busy")
	}
	return false, nil, nil
}

// TestTopicSinkRepublishes checks that the simulation's sink publishes
// again an entry that Pub/Sub did not take for a passing reason, instead of
// stopping the simulation, and that every entry arrives.
func TestTopicSinkRepublishes(t *testing.T) {
	defer func(b struct{ first, max time.Duration }) { republishBackoff = b }(republishBackoff)
	republishBackoff.first, republishBackoff.max = 10*time.Millisecond, 20*time.Millisecond
	fail := &failFirst{}
	fail.n.Store(20)
	srv := pstest.NewServer(pstest.ServerReactorOption{FuncName: "Publish", Reactor: fail})
	t.Cleanup(func() { srv.Close() })
	ctx := t.Context()
	c := pubsubtest.Client(t, srv.Addr, "p")
	if _, err := c.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: "projects/p/topics/audit"}); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	s := newTopicSink(c, "audit", slog.New(slog.NewTextHandler(&logged, nil)))
	s.pub.PublishSettings.Timeout = 50 * time.Millisecond // the client's own retries end soon
	s.pub.PublishSettings.CountThreshold = 1
	const n = 5
	for i := range n {
		if err := s.send(ctx, simulation.Entry{Data: []byte{byte('a' + i)}}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	flushCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.flush(flushCtx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if s.retried == 0 {
		t.Errorf("no publish was made again, though %d failed", fail.n.Load())
	}
	if got := strings.Count(logged.String(), "publishing it again"); got != s.retried {
		t.Errorf("%d publishes made again, %d warnings logged:\n%s", s.retried, got, logged.String())
	}
	seen := map[string]bool{}
	for _, m := range srv.Messages() {
		seen[string(m.Data)] = true
	}
	if len(seen) != n {
		t.Errorf("the topic holds %d distinct entries, want %d", len(seen), n)
	}
}

// TestTopicSinkDropsWhileTheTopicIsMissing checks that the simulation's
// sink drops the entries of a topic that does not exist, as a log sink
// does, instead of stopping, says so once when the topic goes and once when
// it is back, and publishes again once it exists.
func TestTopicSinkDropsWhileTheTopicIsMissing(t *testing.T) {
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	ctx := t.Context()
	c := pubsubtest.Client(t, srv.Addr, "p")
	var logged bytes.Buffer
	s := newTopicSink(c, "audit", slog.New(slog.NewTextHandler(&logged, nil)))
	s.pub.PublishSettings.CountThreshold = 1
	sendAll := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := s.send(ctx, simulation.Entry{Data: []byte{byte('a' + i)}}); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		if err := s.flush(ctx); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	sendAll(0, 3) // no topic yet
	if _, err := c.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: "projects/p/topics/audit"}); err != nil {
		t.Fatal(err)
	}
	sendAll(3, 5)
	if s.dropped != 3 {
		t.Errorf("dropped %d entries, want the 3 sent before the topic existed", s.dropped)
	}
	var got []string
	for _, m := range srv.Messages() {
		got = append(got, string(m.Data))
	}
	slices.Sort(got) // publishes of one flush may land in any order
	if strings.Join(got, "") != "de" {
		t.Errorf("the topic holds %q, want the 2 entries sent once it existed", got)
	}
	for msg, want := range map[string]int{"the topic does not exist": 1, "the topic exists again": 1} {
		if n := strings.Count(logged.String(), msg); n != want {
			t.Errorf("logged %q %d times, want %d:\n%s", msg, n, want, logged.String())
		}
	}
}

// The progress bar of simulate says how far the simulation is behind once
// it is a second or more.
func TestBehindDescription(t *testing.T) {
	for behind, want := range map[time.Duration]string{
		0:                       "simulating",
		999 * time.Millisecond:  "simulating",
		time.Second:             "simulating, 1 s behind",
		90*time.Second + 999999: "simulating, 90 s behind",
	} {
		if got := behindDescription(behind); got != want {
			t.Errorf("behindDescription(%v) = %q, want %q", behind, got, want)
		}
	}
}

// TestStopWhileRepublishing: a simulation stopped (SIGINT, the end of
// --duration, the embedded mode's shutdown) while a publish waits to be
// made again ends as a stop does, not as a failure: simulate returns nil,
// and the embedded mode's step reports nothing.
func TestStopWhileRepublishing(t *testing.T) {
	defer func(b struct{ first, max time.Duration }) { republishBackoff = b }(republishBackoff)
	republishBackoff.first, republishBackoff.max = 200*time.Millisecond, 200*time.Millisecond
	newSink := func(t *testing.T) *topicSink {
		fail := &failFirst{}
		fail.n.Store(1 << 40) // every publish fails, for a passing reason
		srv := pstest.NewServer(pstest.ServerReactorOption{FuncName: "Publish", Reactor: fail})
		t.Cleanup(func() { srv.Close() })
		c := pubsubtest.Client(t, srv.Addr, "p")
		if _, err := c.TopicAdminClient.CreateTopic(t.Context(), &pb.Topic{Name: "projects/p/topics/audit"}); err != nil {
			t.Fatal(err)
		}
		s := newTopicSink(c, "audit", slog.New(slog.DiscardHandler))
		s.pub.PublishSettings.Timeout = 50 * time.Millisecond
		s.pub.PublishSettings.CountThreshold = 1
		return s
	}
	t.Run("simulate", func(t *testing.T) {
		s := newSink(t)
		cmd := &SimulateCmd{Rate: 200, Projects: 5, Formats: []string{"v1", "v2"}, Seed: 1, Speed: 1, APIRetention: time.Hour,
			Jitter: time.Second, MaxDelay: 2 * time.Minute}
		cfg, err := cmd.config()
		if err != nil {
			t.Fatal(err)
		}
		org, err := simulation.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second) // SIGINT
		defer cancel()
		e := &env{ctx: ctx, log: slog.New(slog.DiscardHandler), stdout: io.Discard, stderr: io.Discard}
		if err := cmd.simulate(e, org, s); err != nil {
			t.Errorf("simulate stopped while republishing: %v", err)
		}
		if s.retried == 0 {
			t.Error("no publish was made again: the test stopped nothing in the middle")
		}
	})
	t.Run("embedded", func(t *testing.T) {
		s := newSink(t)
		org, err := simulation.New(simulation.Config{Seed: 1, Projects: 5, Rate: 200, Retention: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		sim := &embeddedSimulation{org: org, sink: s}
		ctx, cancel := context.WithCancel(t.Context()) // the service's shutdown
		defer cancel()
		time.AfterFunc(2*time.Second, cancel)
		stop, stopCancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer stopCancel()
		err = sim.run(ctx, func() context.Context { return stop }, slog.New(slog.DiscardHandler))
		if err := (step{"simulation", func(context.Context) error { return err }}).do(ctx); err != nil {
			t.Errorf("the embedded mode's simulation, stopped while republishing, reports %v", err)
		}
	})
}

// TestSimulateRealTimeProgress: a real-time run with --duration draws its
// progress bar from its first entry, a line, not from the virtual start
// in 2025 (millions of seconds of bar, drawn at the thousandth entry).
func TestSimulateRealTimeProgress(t *testing.T) {
	code, _, stderr := runCLI(t, "simulate", "--output", os.DevNull, "--duration", "4s", "--rate", "400", "--projects", "5")
	if code != 0 {
		t.Fatalf("exit %d: %.300s", code, stderr)
	}
	if len(stderr) > 64<<10 {
		t.Errorf("%d bytes of progress bar on standard error; it begins %.200q", len(stderr), stderr)
	}
}
