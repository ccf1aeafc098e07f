package events_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigtable/apiv2/bigtablepb"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bqobserver/bqobserver/events"
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
