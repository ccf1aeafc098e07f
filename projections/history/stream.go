package history

import (
	"context"
	"fmt"
	"slices"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/schema"
)

// stream is the BigQuery Storage Write API as the writer uses it: one
// append of serialized rows to a table's default stream, answered with
// BigQuery's response, or the error that stopped it (the response may come
// with the error: it carries the errors of single rows). Tests put a fake at
// this seam where the emulator does not behave as BigQuery does.
type stream interface {
	append(ctx context.Context, rows [][]byte) (*storagepb.AppendRowsResponse, error)
	close() error
}

// opener opens a stream that takes rows of the given descriptor.
type opener func(ctx context.Context, desc *descriptorpb.DescriptorProto) (stream, error)

// Destination is the job_versions table the history is written to, and the
// Storage Write API client that writes it.
type Destination struct {
	Client *managedwriter.Client
	// BigQuery names the project and dataset of the table.
	BigQuery schema.BigQuery
}

// opener opens the table's default stream. The open ends with ctx (the
// client would otherwise retry an unavailable BigQuery for ten minutes),
// but the stream, once open, lives until it is closed, whatever ctx does:
// the client ties a stream's life to the context it was opened with, so
// that context is cut loose from ctx once the open has succeeded.
func (d Destination) opener() opener {
	table := managedwriter.TableParentFromParts(d.BigQuery.Project, d.BigQuery.Dataset, schema.JobVersionsTable)
	return func(ctx context.Context, desc *descriptorpb.DescriptorProto) (stream, error) {
		life, end := context.WithCancel(context.WithoutCancel(ctx))
		detach := context.AfterFunc(ctx, end)
		ms, err := d.Client.NewManagedStream(life,
			managedwriter.WithDestinationTable(table),
			managedwriter.WithType(managedwriter.DefaultStream),
			managedwriter.WithSchemaDescriptor(desc),
			managedwriter.EnableWriteRetries(true))
		if !detach() && err == nil { // ctx ended as the open succeeded: the stream is cancelled already
			ms.Close()
			err = context.Cause(ctx)
		}
		if err != nil {
			end()
			return nil, fmt.Errorf("opening the default stream of %s: %w", table, err)
		}
		return managedStream{ms: ms, end: end}, nil
	}
}

// managedStream is a default stream of the managedwriter client, which
// pipelines appends on one connection, reconnects, and retries an append
// a few times when BigQuery answers with a transient error.
type managedStream struct {
	ms  *managedwriter.ManagedStream
	end context.CancelFunc // ends the context the stream lives in
}

func (s managedStream) append(ctx context.Context, rows [][]byte) (*storagepb.AppendRowsResponse, error) {
	res, err := s.ms.AppendRows(ctx, rows)
	if err != nil {
		return nil, err
	}
	return res.FullResponse(ctx)
}

func (s managedStream) close() error {
	defer s.end()
	return s.ms.Close()
}

// tableFault are the Storage Write API's errors that are the table's fault,
// not the rows': the table or its schema is not what the writer expects
// (setup has not run since an upgrade, or the table was deleted). They
// clear once the table is fixed, so they are transient.
var tableFault = []storagepb.StorageError_StorageErrorCode{
	storagepb.StorageError_TABLE_NOT_FOUND,
	storagepb.StorageError_STREAM_NOT_FOUND,
	storagepb.StorageError_SCHEMA_MISMATCH_EXTRA_FIELDS,
	storagepb.StorageError_INVALID_STREAM_TYPE,
	storagepb.StorageError_INVALID_STREAM_STATE,
	storagepb.StorageError_STREAM_FINALIZED,
}

// refused reports whether BigQuery refused a whole append for what its
// rows hold (INVALID_ARGUMENT without naming rows), rather than for the
// table or the service: such an append fails again whenever it is sent.
// The StorageError that names a table fault is read from the gRPC status,
// which every shape of the client's errors carries: the managedwriter
// client returns a plain status error when the append's response failed,
// and an *apierror.APIError when the response carried the error.
func refused(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		return false
	}
	for _, d := range st.Details() {
		if se, ok := d.(*storagepb.StorageError); ok && slices.Contains(tableFault, se.GetCode()) {
			return false
		}
	}
	return true
}

// unavailable marks a failure to append that may succeed later: BigQuery
// unavailable, a quota, a deadline, a table to fix, the writer closing.
func unavailable(n int, err error) error {
	return fmt.Errorf("appending %d rows to BigQuery: %w: %w", n, events.ErrUnavailable, err)
}
