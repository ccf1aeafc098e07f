package events_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigtable/apiv2/bigtablepb"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
)

// faults injects failures into the data calls of a real Bigtable client,
// through interceptors on its connection.
type faults struct {
	mu   sync.Mutex
	call codes.Code // fails every data call with this code
	row  codes.Code // rewrites every row outcome of MutateRows to this code
}

func (f *faults) set(call, row codes.Code) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call, f.row = call, row
}

func (f *faults) get() (call, row codes.Code) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.call, f.row
}

func (f *faults) dialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithChainStreamInterceptor(f.stream), grpc.WithChainUnaryInterceptor(f.unary)}
}

const dataService = "/google.bigtable.v2.Bigtable/"

func (f *faults) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	call, row := f.get()
	if call != codes.OK && strings.HasPrefix(method, dataService) {
		return nil, status.Error(call, "injected failure")
	}
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil || row == codes.OK || method != dataService+"MutateRows" {
		return s, err
	}
	return &rowFailer{ClientStream: s, code: row}, nil
}

func (f *faults) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if call, _ := f.get(); call != codes.OK && strings.HasPrefix(method, dataService) {
		return status.Error(call, "injected failure")
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// rowFailer reports every row of a MutateRows response as failed.
type rowFailer struct {
	grpc.ClientStream
	code codes.Code
}

func (r *rowFailer) RecvMsg(m any) error {
	if err := r.ClientStream.RecvMsg(m); err != nil {
		return err
	}
	if res, ok := m.(*bigtablepb.MutateRowsResponse); ok {
		for _, e := range res.Entries {
			e.Status = &statuspb.Status{Code: int32(r.code), Message: "injected row failure"}
		}
	}
	return nil
}

// errorKind names the sentinel an error matches.
func errorKind(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, events.ErrUnavailable) && errors.Is(err, events.ErrInvalid):
		return "both"
	case errors.Is(err, events.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, events.ErrInvalid):
		return "invalid"
	}
	return "other"
}

func testFailures(t *testing.T, open opener) {
	f := &faults{}
	l := newLog(t, open, events.LogConfig{}, f.dialOptions()...)
	evs := corpus(10)
	tests := []struct {
		name      string
		call, row codes.Code
		want      string
	}{
		{"unavailable", codes.Unavailable, codes.OK, "unavailable"},
		{"deadline exceeded", codes.DeadlineExceeded, codes.OK, "unavailable"},
		{"resource exhausted", codes.ResourceExhausted, codes.OK, "unavailable"},
		{"aborted", codes.Aborted, codes.OK, "unavailable"},
		{"internal", codes.Internal, codes.OK, "unavailable"},
		{"canceled by the server", codes.Canceled, codes.OK, "unavailable"},
		{"not found", codes.NotFound, codes.OK, "unavailable"},
		{"permission denied", codes.PermissionDenied, codes.OK, "unavailable"},
		{"invalid argument", codes.InvalidArgument, codes.OK, "other"},
		{"rows internal", codes.OK, codes.Internal, "unavailable"},
		{"rows unavailable", codes.OK, codes.Unavailable, "unavailable"},
		{"rows invalid argument", codes.OK, codes.InvalidArgument, "other"},
	}
	for _, tt := range tests {
		f.set(tt.call, tt.row)
		// The client retries some codes itself until the deadline.
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		err := l.Append(ctx, evs)
		cancel()
		if got := errorKind(err); got != tt.want {
			t.Errorf("%s: Append = %v (%s); want %s", tt.name, err, got, tt.want)
		}
	}
	testReadFailures(t, f, l)
	f.set(codes.OK, codes.OK)
	appendAll(t, l, evs)
	check(t, read(t, l, keysOf(evs)), want(evs))
}

func testReadFailures(t *testing.T, f *faults, l *events.Log) {
	f.set(codes.Unavailable, codes.OK)
	reads := map[string]func(context.Context) error{
		"JobEvents": func(ctx context.Context) error { _, err := l.JobEvents(ctx, job(1)); return err },
		"ReadJobs": func(ctx context.Context) error {
			return l.ReadJobs(ctx, []events.JobKey{job(1)}, func(events.JobKey, []events.Event) error { return nil })
		},
		"Range": func(ctx context.Context) error {
			return l.Range(ctx, farPast, farFuture, func(events.Event) error { return nil })
		},
		"OpenJobs":  func(ctx context.Context) error { return l.OpenJobs(ctx, func(events.JobKey) error { return nil }) },
		"PruneOpen": func(ctx context.Context) error { return l.PruneOpen(ctx, []events.JobKey{job(1)}) },
	}
	for name, read := range reads {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		err := read(ctx)
		cancel()
		if got := errorKind(err); got != "unavailable" {
			t.Errorf("%s with Bigtable unavailable = %v (%s); want unavailable", name, err, got)
		}
	}
}

// partialWrite applies, of the next MutateRows, only the open-jobs index
// rows and fails the others, as Bigtable may (it applies the rows of one
// call in any order, each on its own); every later MutateRows fails.
type partialWrite struct {
	mu                 sync.Mutex
	stripNext, failAll bool
}

func (p *partialWrite) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if method != dataService+"MutateRows" {
		return streamer(ctx, desc, cc, method, opts...)
	}
	p.mu.Lock()
	strip, fail := p.stripNext, p.failAll
	if strip {
		p.stripNext, p.failAll = false, true
	}
	p.mu.Unlock()
	if fail {
		return nil, status.Error(codes.Unavailable, "injected: tablet unavailable")
	}
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil || !strip {
		return s, err
	}
	return &indexOnly{ClientStream: s}, nil
}

// indexOnly sends only the o# entries of a MutateRows request and reports
// the others failed.
type indexOnly struct {
	grpc.ClientStream
	kept, dropped []int64
}

func (s *indexOnly) SendMsg(m any) error {
	req := proto.Clone(m.(*bigtablepb.MutateRowsRequest)).(*bigtablepb.MutateRowsRequest)
	var entries []*bigtablepb.MutateRowsRequest_Entry
	for i, e := range req.Entries {
		if strings.HasPrefix(string(e.RowKey), "o#") {
			entries = append(entries, e)
			s.kept = append(s.kept, int64(i))
		} else {
			s.dropped = append(s.dropped, int64(i))
		}
	}
	req.Entries = entries
	return s.ClientStream.SendMsg(req)
}

func (s *indexOnly) RecvMsg(m any) error {
	if len(s.kept) > 0 {
		if err := s.ClientStream.RecvMsg(m); err != nil {
			return err
		}
	} else if s.dropped == nil {
		return io.EOF
	}
	res := m.(*bigtablepb.MutateRowsResponse)
	for _, e := range res.Entries {
		e.Index = s.kept[e.Index]
	}
	for _, i := range s.dropped {
		res.Entries = append(res.Entries, &bigtablepb.MutateRowsResponse_Entry{Index: i,
			Status: &statuspb.Status{Code: int32(codes.Unavailable), Message: "injected row failure"}})
	}
	s.dropped = nil
	return nil
}

// TestDoneLeavesTheIndexLast: a job leaves the open-jobs index only once
// its DONE event is durable, whatever Bigtable applies of a call, so that
// a writer that gives up after a failed append never leaves a job that is
// neither in the index nor finished in the log.
func TestDoneLeavesTheIndexLast(t *testing.T) {
	p := &partialWrite{}
	l := newLog(t, logtest.NewBttest, events.LogConfig{}, grpc.WithChainStreamInterceptor(p.stream))
	evs := life(1, 0, true) // inserted, progress, completed (DONE)
	appendAll(t, l, evs[:2])
	p.mu.Lock()
	p.stripNext = true
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	err := l.Append(ctx, evs[2:])
	cancel()
	if err == nil {
		t.Fatal("the append of the DONE event succeeded though Bigtable failed its rows")
	}
	open := false
	if err := l.OpenJobs(t.Context(), func(k events.JobKey) error { open = open || k == job(1); return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := l.JobEvents(t.Context(), job(1))
	if err != nil {
		t.Fatal(err)
	}
	done := slices.ContainsFunc(got, func(e events.Event) bool { return e.State == events.StateDone })
	if !open && !done {
		t.Errorf("job %s left the open-jobs index but its log has no DONE event (%d events)", job(1), len(got))
	}
}
