package events_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/bqobserver/bqobserver/events"
)

// stalls makes the ReadRows streams of a real Bigtable client stop
// answering after a number of responses, through an interceptor on its
// connection: the stream then waits until its context ends.
type stalls struct {
	after atomic.Int64 // responses each stream gets before it stalls; -1: none stall
}

func newStalls() *stalls {
	s := &stalls{}
	s.after.Store(-1)
	return s
}

func (s *stalls) dialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithChainStreamInterceptor(s.stream)}
}

func (s *stalls) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil || method != dataService+"ReadRows" {
		return cs, err
	}
	return &stallingStream{ClientStream: cs, ctx: ctx, left: s.after.Load()}, nil
}

type stallingStream struct {
	grpc.ClientStream
	ctx  context.Context
	left int64
}

func (s *stallingStream) RecvMsg(m any) error {
	if s.left == 0 {
		<-s.ctx.Done()
		return s.ctx.Err()
	}
	s.left--
	return s.ClientStream.RecvMsg(m)
}

// A read gives up once Bigtable has sent nothing for StallTimeout, at its
// start or in its middle, with ErrUnavailable and well before its context
// ends; the time the caller takes with what it was sent does not count;
// and without StallTimeout a read waits for its context, as before.
func testStalls(t *testing.T, open opener) {
	s := newStalls()
	const stall = 300 * time.Millisecond
	l := newLog(t, open, events.LogConfig{MaxBatchRows: 40, StallTimeout: stall}, s.dialOptions()...)
	evs := corpus(60)
	appendAll(t, l, evs)
	keys := keysOf(evs)
	reads := map[string]func(context.Context) (int, error){
		"JobEvents": func(ctx context.Context) (int, error) {
			evs, err := l.JobEvents(ctx, job(1))
			return min(len(evs), 1), err
		},
		"ReadJobs": func(ctx context.Context) (int, error) {
			n := 0
			err := l.ReadJobs(ctx, keys, func(events.JobKey, []events.Event) error { n++; return nil })
			return n, err
		},
		"Range": func(ctx context.Context) (int, error) {
			n := 0
			err := l.Range(ctx, farPast, farFuture, func(events.Event) error { n++; return nil })
			return n, err
		},
		"OpenJobs": func(ctx context.Context) (int, error) {
			n := 0
			err := l.OpenJobs(ctx, func(events.JobKey) error { n++; return nil })
			return n, err
		},
		"Ping": func(ctx context.Context) (int, error) { return 0, l.Ping(ctx) },
	}
	for _, after := range []int64{0, 2} { // stalled from the start, and after two responses
		s.after.Store(after)
		for name, read := range reads {
			if after > 0 && (name == "JobEvents" || name == "Ping") {
				continue // one row comes whole in the first response
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			start := time.Now()
			n, err := read(ctx)
			took := time.Since(start)
			ended := ctx.Err()
			cancel()
			switch {
			case ended != nil:
				t.Errorf("%s stalled after %d responses: still waiting when its context ended (%v)", name, after, err)
			case errorKind(err) != "unavailable" || !strings.Contains(err.Error(), "Bigtable sent nothing for 300ms"):
				t.Errorf("%s stalled after %d responses = %v (%s); want unavailable, saying Bigtable sent nothing for 300ms", name, after, err, errorKind(err))
			case took < stall:
				t.Errorf("%s stalled after %d responses gave up after %s, before the stall timeout", name, after, took)
			}
			if after == 0 && n > 0 {
				t.Errorf("%s stalled from the start read %d items", name, n)
			}
		}
	}

	s.after.Store(-1) // a caller slower than the timeout, on a Bigtable that answers
	n := 0
	err := l.ReadJobs(t.Context(), keys[:3], func(events.JobKey, []events.Event) error {
		n++
		time.Sleep(2 * stall)
		return nil
	})
	if err != nil || n != 3 {
		t.Errorf("ReadJobs with a caller taking %s a job = %d jobs, %v; want 3, no error", 2*stall, n, err)
	}

	unbounded := newLog(t, open, events.LogConfig{}, s.dialOptions()...)
	appendAll(t, unbounded, evs)
	s.after.Store(0)
	ctx, cancel := context.WithTimeout(t.Context(), 2*stall)
	defer cancel()
	err = unbounded.ReadJobs(ctx, keys, func(events.JobKey, []events.Event) error { return nil })
	if ctx.Err() == nil || errorKind(err) != "unavailable" {
		t.Errorf("ReadJobs stalled without a stall timeout = %v with its context %v; want it to wait for the context's end", err, ctx.Err())
	}
}
