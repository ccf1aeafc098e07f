package history

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/schema"
)

// writeServer serves srv as the Storage Write API in process and returns
// the real managedwriter client of it: the errors the sink sees then have
// the shapes the client gives them, which a fake at the stream seam cannot
// show.
func writeServer(t *testing.T, srv storagepb.BigQueryWriteServer) *managedwriter.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	storagepb.RegisterBigQueryWriteServer(gs, srv)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	client, err := managedwriter.NewClient(context.Background(), "p", option.WithEndpoint(ln.Addr().String()),
		option.WithoutAuthentication(), option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// sinkOf is a sink writing through client, closed when the test ends.
func sinkOf(t *testing.T, log Log, client *managedwriter.Client, cfg WriterConfig) *Sink {
	t.Helper()
	cfg.FlushInterval = 10 * time.Millisecond
	s, err := New(Config{Writer: cfg}, log,
		Destination{Client: client, BigQuery: schema.BigQuery{Project: "p", Dataset: "d", Location: "US"}}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// mismatchServer is the Storage Write API of a job_versions table that
// setup has not upgraded yet: it answers every append, in the response,
// with INVALID_ARGUMENT carrying the StorageError
// SCHEMA_MISMATCH_EXTRA_FIELDS, as BigQuery does.
type mismatchServer struct {
	storagepb.UnimplementedBigQueryWriteServer
}

func (mismatchServer) GetWriteStream(_ context.Context, r *storagepb.GetWriteStreamRequest) (*storagepb.WriteStream, error) {
	return &storagepb.WriteStream{Name: r.GetName(), Type: storagepb.WriteStream_COMMITTED, Location: "US"}, nil
}

func (mismatchServer) AppendRows(s storagepb.BigQueryWrite_AppendRowsServer) error {
	st, err := status.New(codes.InvalidArgument, "Input schema has more fields than BigQuery schema, extra fields: 'new_column'").
		WithDetails(&storagepb.StorageError{Code: storagepb.StorageError_SCHEMA_MISMATCH_EXTRA_FIELDS})
	if err != nil {
		return err
	}
	for {
		if _, err := s.Recv(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if err := s.Send(&storagepb.AppendRowsResponse{Response: &storagepb.AppendRowsResponse_Error{Error: st.Proto()}}); err != nil {
			return err
		}
	}
}

// TestTableFaultIsTransient writes through the real client to a table
// that lacks a column of this build: the table's fault, transient, never
// a rejected row (the client hands the error over as a plain gRPC status,
// not an *apierror.APIError).
func TestTableFaultIsTransient(t *testing.T) {
	evs := queryJob("j1", doneFacts(1<<20), nil)
	s := sinkOf(t, newLog(t, evs...), writeServer(t, mismatchServer{}), WriterConfig{})
	err := s.Handle(t.Context(), evs[2])
	if errors.Is(err, errRowRejected) || !errors.Is(err, events.ErrUnavailable) {
		t.Errorf("Handle with a table that lacks a column = %v; want a transient error, not a rejected row", err)
	}
}

// unavailableServer is a Storage Write API that answers UNAVAILABLE to
// GetWriteStream, as BigQuery does during an outage (or a load balancer in
// front of it without a backend); the client retries that for ten minutes.
type unavailableServer struct {
	storagepb.UnimplementedBigQueryWriteServer
	asked atomic.Int64
}

func (u *unavailableServer) GetWriteStream(context.Context, *storagepb.GetWriteStreamRequest) (*storagepb.WriteStream, error) {
	u.asked.Add(1)
	return nil, status.Error(codes.Unavailable, "backend unavailable")
}

// TestOpenIsBounded writes through the real client to a BigQuery that
// never lets the stream open: the write fails transiently once the
// append's Timeout has passed, and Close, while the stream opens, returns
// when its context ends.
func TestOpenIsBounded(t *testing.T) {
	evs := queryJob("j1", doneFacts(1<<20), nil)
	t.Run("by the append's timeout", func(t *testing.T) {
		s := sinkOf(t, newLog(t, evs...), writeServer(t, &unavailableServer{}), WriterConfig{Timeout: time.Second})
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // the test's own bound
		defer cancel()
		start := time.Now()
		if err := s.Handle(ctx, evs[2]); !errors.Is(err, events.ErrUnavailable) {
			t.Errorf("Handle against an unavailable BigQuery = %v; want a transient error", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Handle against an unavailable BigQuery took %s; want about the append's timeout of 1s", took)
		}
	})
	t.Run("by close", func(t *testing.T) {
		srv := &unavailableServer{}
		s := sinkOf(t, newLog(t, evs...), writeServer(t, srv), WriterConfig{Timeout: time.Hour})
		handled := make(chan error, 1)
		go func() { handled <- s.Handle(context.Background(), evs[2]) }()
		waitUntil(t, "the stream to open", func() bool { return srv.asked.Load() > 0 })
		closed := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			closed <- s.Close(ctx)
		}()
		select {
		case err := <-closed:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Close = %v, want the deadline's error", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close with a 500ms context has not returned after 10s: the stream's open is still retrying")
		}
		if err := <-handled; !errors.Is(err, events.ErrUnavailable) {
			t.Errorf("Handle while the writer closed = %v; want a transient error", err)
		}
	})
}
