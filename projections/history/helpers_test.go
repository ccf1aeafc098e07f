package history

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/schema"
)

// t0 is when the test jobs begin.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// fixedNow is the clock of version_time in tests that compare rows.
func fixedNow() time.Time { return time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC) }

// queryJob is the events of a query job: inserted, running, then completed
// with the facts given.
func queryJob(id string, done events.Facts, err *events.JobError) []events.Event {
	key := events.JobKey{Project: "acme-analytics", Location: "US", JobID: id}
	inserted := events.Facts{Principal: "ann@acme.com", JobType: events.JobTypeQuery, StatementType: "SELECT",
		Priority: "INTERACTIVE", Query: "SELECT region, SUM(amount) FROM sales.orders GROUP BY region",
		Labels: map[string]string{"team": "finance", "env": "prod"}, CreateTime: t0}
	running := events.Facts{StartTime: t0.Add(2 * time.Second), Reservation: "unreserved",
		ReferencedTables: []string{"acme-analytics.sales.orders"}}
	running.SlotMs = events.Int64(1200)
	return []events.Event{
		{ID: id + "-1", Kind: events.KindInserted, Job: key, Time: t0, State: events.StatePending, Facts: inserted,
			Source: events.Source{Format: "v2"}},
		{ID: id + "-2", Kind: events.KindStateChanged, Job: key, Time: t0.Add(2 * time.Second), State: events.StateRunning,
			Facts: running, Source: events.Source{Format: "v2"}},
		{ID: id + "-3", Kind: events.KindCompleted, Job: key, Time: t0.Add(9 * time.Second), State: events.StateDone,
			Error: err, Facts: done, Source: events.Source{Format: "v1"}},
	}
}

// doneFacts are a finished query's statistics.
func doneFacts(billed int64) events.Facts {
	f := events.Facts{EndTime: t0.Add(9 * time.Second), DestinationTable: "acme-analytics._anon.result"}
	f.BytesProcessed, f.BytesBilled, f.SlotMs, f.CacheHit = events.Int64(billed), events.Int64(billed), events.Int64(4500), events.Bool(false)
	return f
}

// newLog is an event log for the test (bttest, or the emulator when
// BIGTABLE_EMULATOR_HOST is set) holding evs.
func newLog(t testing.TB, evs ...events.Event) *events.Log {
	t.Helper()
	bt := logtest.NewBigtable(t)
	l, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	return l
}

// fakeStream stands in for BigQuery's Storage Write API at the writer's
// seam, answering as BigQuery documents it does: it keeps the rows of
// appends it accepts, and refuses a whole append, naming the rows at fault,
// when any of its rows is marked bad (its job id contains "bad").
type fakeStream struct {
	mu      sync.Mutex
	desc    *descriptorpb.DescriptorProto
	rows    []*dynamicpb.Message
	appends [][]int // the number of rows of each append, by outcome: ok, refused
	opened  int
	// fail, when set, fails an append with its error before looking at it.
	fail func() error
	// refuseWhole refuses an append with bad rows without naming them.
	refuseWhole bool
}

func (f *fakeStream) open(_ context.Context, desc *descriptorpb.DescriptorProto) (stream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.desc = desc
	f.opened++
	return f, nil
}

func (f *fakeStream) append(ctx context.Context, rows [][]byte) (*storagepb.AppendRowsResponse, error) {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		if err := fail(); err != nil {
			return nil, err
		}
	}
	msgs, bad, err := f.decode(rows)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(bad) > 0 {
		f.appends = append(f.appends, []int{0, len(rows)})
		if f.refuseWhole {
			return nil, invalidArgument("the append has rows BigQuery cannot take")
		}
		resp := &storagepb.AppendRowsResponse{}
		for _, i := range bad {
			resp.RowErrors = append(resp.RowErrors, &storagepb.RowError{Index: int64(i),
				Code: storagepb.RowError_FIELDS_ERROR, Message: "Field value of query cannot be bad"})
		}
		return resp, invalidArgument("Errors found while processing rows")
	}
	f.appends = append(f.appends, []int{len(rows), 0})
	f.rows = append(f.rows, msgs...)
	return &storagepb.AppendRowsResponse{}, nil
}

// decode reads rows with the descriptor the writer sent, as BigQuery does,
// and returns the indexes of the bad ones.
func (f *fakeStream) decode(rows [][]byte) ([]*dynamicpb.Message, []int, error) {
	f.mu.Lock()
	desc := f.desc
	f.mu.Unlock()
	md, err := messageDescriptor(desc)
	if err != nil {
		return nil, nil, err
	}
	var msgs []*dynamicpb.Message
	var bad []int
	jobID := md.Fields().ByName("job_id")
	for i, r := range rows {
		m := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(r, m); err != nil {
			return nil, nil, invalidArgument(err.Error())
		}
		if id := m.Get(jobID).String(); containsBad(id) {
			bad = append(bad, i)
		}
		msgs = append(msgs, m)
	}
	return msgs, bad, nil
}

func containsBad(s string) bool { return strings.Contains(s, "bad") }

// messageDescriptor resolves a self-contained descriptor, as a server does.
func messageDescriptor(dp *descriptorpb.DescriptorProto) (protoreflect.MessageDescriptor, error) {
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{Name: proto.String("row.proto"),
		MessageType: []*descriptorpb.DescriptorProto{dp}}, nil)
	if err != nil {
		return nil, invalidArgument(err.Error())
	}
	return fd.Messages().Get(0), nil
}

// invalidArgument is how BigQuery refuses an append.
func invalidArgument(msg string) error { return status.Error(codes.InvalidArgument, msg) }

func (f *fakeStream) close() error { return nil }

// written returns the rows the fake accepted, as column values.
func (f *fakeStream) written(t testing.TB) []Row {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Row
	for _, m := range f.rows {
		out = append(out, values(m, schema.JobVersions()))
	}
	return out
}

// jobIDs returns the job ids of rows, sorted.
func jobIDs(rows []Row) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r["job_id"].(string))
	}
	slices.Sort(out)
	return out
}

// newFakeSink is a sink writing to a fake stream.
func newFakeSink(t testing.TB, l Log, f *fakeStream, cfg Config) *Sink {
	t.Helper()
	if cfg.Writer.FlushInterval == 0 {
		cfg.Writer.FlushInterval = 20 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	s, err := newSink(cfg, l, f.open, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// eventsOf returns the events of evs of job id.
func eventsOf(id string, evs []events.Event) []events.Event {
	var out []events.Event
	for _, e := range evs {
		if e.Job.JobID == id {
			out = append(out, e)
		}
	}
	return out
}

// counter returns a counter's value.
func counter(c prometheus.Counter) float64 { return testutil.ToFloat64(c) }
