package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/bqobserver/bqobserver/internal/simulation"
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
	c, err := pubsub.NewClient(ctx, "p", option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
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
