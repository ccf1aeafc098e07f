package history

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"github.com/google/go-cmp/cmp"
	"github.com/googleapis/gax-go/v2/apierror"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/bqobserver/bqobserver/events"
)

// rowsOf encodes the finished version of a query job for each id.
func rowsOf(t *testing.T, ids ...string) (*versioner, [][]byte) {
	t.Helper()
	v, err := newVersioner(Config{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]byte
	for _, id := range ids {
		evs := queryJob(id, doneFacts(1<<30), nil)
		j, d := v.version(evs[0].Job, evs)
		b, err := v.rows.encode(&j, &d)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, b)
	}
	return v, rows
}

func newTestWriter(t *testing.T, v *versioner, f *fakeStream, cfg WriterConfig) *writer {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	w := newWriter(cfg, v.rows.proto, f.open, m)
	t.Cleanup(func() { w.close(context.Background()) })
	return w
}

// writeAll writes rows at once and returns each one's error.
func writeAll(w *writer, rows [][]byte) []error {
	errs := make([]error, len(rows))
	var wg sync.WaitGroup
	for i, r := range rows {
		wg.Go(func() { errs[i] = w.write(context.Background(), r) })
	}
	wg.Wait()
	return errs
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}

// TestWriterBatches writes rows at once: they go in appends of at most
// MaxRows rows and MaxBytes bytes, each row once.
func TestWriterBatches(t *testing.T) {
	v, rows := rowsOf(t, ids("job", 35)...)
	tests := []struct {
		name        string
		cfg         WriterConfig
		wantAppends int
	}{
		{"by rows", WriterConfig{MaxRows: 10, FlushInterval: 300 * time.Millisecond}, 4},
		{"by bytes", WriterConfig{MaxBytes: 3*len(rows[0]) + 10, FlushInterval: 300 * time.Millisecond}, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeStream{}
			w := newTestWriter(t, v, f, tt.cfg)
			for i, err := range writeAll(w, rows) {
				if err != nil {
					t.Errorf("row %d: %v", i, err)
				}
			}
			if diff := cmp.Diff(ids("job", 35), jobIDs(f.written(t))); diff != "" {
				t.Errorf("rows written (-want +got):\n%s", diff)
			}
			if len(f.appends) != tt.wantAppends {
				t.Errorf("%d appends %v, want %d", len(f.appends), f.appends, tt.wantAppends)
			}
			if f.opened != 1 {
				t.Errorf("the stream was opened %d times, want once", f.opened)
			}
		})
	}
}

// TestWriterRejectsRows checks what becomes of rows BigQuery refuses: they
// fail for good, and the other rows of their append are written.
func TestWriterRejectsRows(t *testing.T) {
	for _, whole := range []bool{false, true} {
		name := "BigQuery names the rows"
		if whole {
			name = "BigQuery refuses the append without naming them"
		}
		t.Run(name, func(t *testing.T) {
			v, rows := rowsOf(t, "ok1", "bad2", "ok3", "bad4", "ok5")
			f := &fakeStream{refuseWhole: whole}
			w := newTestWriter(t, v, f, WriterConfig{FlushInterval: 200 * time.Millisecond})
			errs := writeAll(w, rows)
			for i, id := range []string{"ok1", "bad2", "ok3", "bad4", "ok5"} {
				rejected := errors.Is(errs[i], errRowRejected)
				if rejected != containsBad(id) || (!rejected && errs[i] != nil) {
					t.Errorf("row %s: %v; want rejected %v", id, errs[i], containsBad(id))
				}
			}
			if diff := cmp.Diff([]string{"ok1", "ok3", "ok5"}, jobIDs(f.written(t))); diff != "" {
				t.Errorf("rows written (-want +got):\n%s", diff)
			}
		})
	}
	v, _ := rowsOf(t)
	w := newTestWriter(t, v, &fakeStream{}, WriterConfig{MaxBytes: 10})
	if err := w.write(t.Context(), make([]byte, 11)); !errors.Is(err, errRowRejected) {
		t.Errorf("writing a row over MaxBytes = %v; want it rejected", err)
	}
}

// tableFaultStatus is BigQuery's answer to rows of columns the table lacks, as
// the managedwriter client hands it over: a plain gRPC status when the
// append failed, which is how an AppendRows error reaches the writer.
func tableFaultStatus(t *testing.T) error {
	t.Helper()
	st, err := status.New(codes.InvalidArgument, "Input schema has more fields than BigQuery schema").
		WithDetails(&storagepb.StorageError{Code: storagepb.StorageError_SCHEMA_MISMATCH_EXTRA_FIELDS})
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

// tableFaultAPIError is the same answer as an *apierror.APIError, the
// client's shape when the error came in the append's response.
func tableFaultAPIError(t *testing.T) error {
	t.Helper()
	apiErr, ok := apierror.FromError(tableFaultStatus(t))
	if !ok {
		t.Fatal("no API error")
	}
	return apiErr
}

// TestWriterTransientFailures: a failure that is not the rows' fault fails
// every row transiently, never as rejected, and the rows are written once
// BigQuery takes them again.
func TestWriterTransientFailures(t *testing.T) {
	tests := []struct {
		name string
		err  func(t *testing.T) error
	}{
		{"unavailable", func(*testing.T) error { return status.Error(codes.Unavailable, "connection refused") }},
		{"quota", func(*testing.T) error {
			return status.Error(codes.ResourceExhausted, "Exceeds 'AppendRows throughput' quota")
		}},
		{"internal", func(*testing.T) error { return status.Error(codes.Internal, "try again") }},
		{"a table setup must upgrade", tableFaultStatus},
		{"a table setup must upgrade, as an API error", tableFaultAPIError},
		{"a table setup must upgrade, wrapped", func(t *testing.T) error { return fmt.Errorf("appending: %w", tableFaultStatus(t)) }},
		{"the table missing", func(*testing.T) error { return status.Error(codes.NotFound, "Table not found") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, rows := rowsOf(t, "a", "b")
			failure := tt.err(t)
			f := &fakeStream{fail: func() error { return failure }}
			w := newTestWriter(t, v, f, WriterConfig{FlushInterval: 50 * time.Millisecond})
			for i, err := range writeAll(w, rows) {
				if !errors.Is(err, events.ErrUnavailable) || errors.Is(err, errRowRejected) {
					t.Errorf("row %d: %v; want a transient error", i, err)
				}
			}
			f.mu.Lock()
			f.fail = nil
			f.mu.Unlock()
			for i, err := range writeAll(w, rows) {
				if err != nil {
					t.Errorf("row %d once BigQuery is back: %v", i, err)
				}
			}
			if diff := cmp.Diff([]string{"a", "b"}, jobIDs(f.written(t))); diff != "" {
				t.Errorf("rows written (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWriterClose closes the writer while rows wait for their batch: each
// row was either written or failed transiently, and a write after close
// fails transiently.
func TestWriterClose(t *testing.T) {
	v, rows := rowsOf(t, ids("job", 20)...)
	f := &fakeStream{}
	w := newTestWriter(t, v, f, WriterConfig{FlushInterval: time.Hour})
	errs := make(chan error, len(rows))
	for _, r := range rows {
		go func() { errs <- w.write(context.Background(), r) }()
	}
	time.Sleep(100 * time.Millisecond) // most writes reach the batch
	if err := w.close(t.Context()); err != nil {
		t.Fatal(err)
	}
	written := 0
	for range rows {
		switch err := <-errs; {
		case err == nil:
			written++
		case !errors.Is(err, events.ErrUnavailable):
			t.Errorf("a row written during close: %v; want nil or a transient error", err)
		}
	}
	if got := len(f.written(t)); got != written || written == 0 {
		t.Errorf("%d rows in BigQuery, %d acknowledged; want the same, and some", got, written)
	}
	if err := w.write(t.Context(), rows[0]); !errors.Is(err, events.ErrUnavailable) {
		t.Errorf("a write after close = %v; want a transient error", err)
	}
}

// waitUntil polls cond until it holds, or fails the test after a while.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWriterCloseIsBounded closes the writer while BigQuery hangs: close
// gives up when its context ends, cancelling the append, whose row fails
// transiently.
func TestWriterCloseIsBounded(t *testing.T) {
	v, rows := rowsOf(t, "hung")
	h := &hangStream{entered: make(chan struct{}, 1)}
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	w := newWriter(WriterConfig{FlushInterval: time.Millisecond, Timeout: time.Hour}, v.rows.proto, h.open, m)
	written := make(chan error, 1)
	go func() { written <- w.write(context.Background(), rows[0]) }()
	<-h.entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := w.close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("close = %v, want the deadline's error", err)
	}
	if err := <-written; !errors.Is(err, events.ErrUnavailable) {
		t.Errorf("the hung row: %v, want a transient error", err)
	}
}

// TestWriterCloseIsBoundedWithEveryAppendInFlight: with every append in
// flight hung and a batch waiting for a free one, close still returns
// within its context, and the waiting rows fail transiently instead of
// holding close until an append's own timeout.
func TestWriterCloseIsBoundedWithEveryAppendInFlight(t *testing.T) {
	v, rows := rowsOf(t, "hung", "waiting")
	h := &hangStream{entered: make(chan struct{}, 2)}
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	w := newWriter(WriterConfig{FlushInterval: time.Millisecond, Timeout: time.Hour, Inflight: 1}, v.rows.proto, h.open, m)
	written := make(chan error, 2)
	go func() { written <- w.write(context.Background(), rows[0]) }()
	<-h.entered
	go func() { written <- w.write(context.Background(), rows[1]) }()
	for w.waits.Load() == 0 { // until the second row's batch waits for the one append
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- w.close(ctx) }()
	select {
	case err := <-closed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("close = %v, want the deadline's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("close did not return within 10 s of its 100 ms deadline")
	}
	for range 2 {
		if err := <-written; !errors.Is(err, events.ErrUnavailable) {
			t.Errorf("a row: %v, want a transient error", err)
		}
	}
}

// TestWriterSharesTheOpen writes rows in appends of their own while the
// stream does not open until its context ends: the appends wait for one
// open, each within its own Timeout, and none waits for another's open
// to end first (one at a time, three appends would take three Timeouts).
func TestWriterSharesTheOpen(t *testing.T) {
	v, rows := rowsOf(t, "a", "b", "c")
	var opens atomic.Int64
	hung := func(ctx context.Context, _ *descriptorpb.DescriptorProto) (stream, error) {
		opens.Add(1)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 500 * time.Millisecond
	w := newWriter(WriterConfig{MaxRows: 1, FlushInterval: time.Millisecond, Timeout: timeout}, v.rows.proto, hung, m)
	t.Cleanup(func() { w.close(context.Background()) })
	start := time.Now()
	for i, err := range writeAll(w, rows) {
		if !errors.Is(err, events.ErrUnavailable) {
			t.Errorf("row %d: %v; want a transient error", i, err)
		}
	}
	if took := time.Since(start); took >= 2*timeout+timeout/2 {
		t.Errorf("the writes took %s; want about one Timeout (%s), not one after another", took, timeout)
	}
	if got := opens.Load(); got > 2 {
		t.Errorf("the stream was opened %d times for 3 appends at once; want them to share an open", got)
	}
}

// hangStream is a Storage Write API whose appends never end by themselves.
type hangStream struct{ entered chan struct{} }

func (h *hangStream) open(context.Context, *descriptorpb.DescriptorProto) (stream, error) {
	return h, nil
}

func (h *hangStream) append(ctx context.Context, _ [][]byte) (*storagepb.AppendRowsResponse, error) {
	h.entered <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (h *hangStream) close() error { return nil }
