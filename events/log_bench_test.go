package events_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigtable"
	"google.golang.org/grpc"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
)

// benchBackends are the servers the append benchmark writes to. bttest gets
// the emulator's message limit so that the raw baseline can send a whole
// batch in one request.
var benchBackends = []struct {
	name  string
	start func(testing.TB) string
}{
	{"bttest", func(tb testing.TB) string { return logtest.StartBttest(tb, grpc.MaxRecvMsgSize(256<<20)) }},
	{"emulator", func(tb testing.TB) string { return logtest.RequireEmulator(tb) }},
}

const (
	benchBatch = 500 // events per append, the ingest pipeline's default batch
	benchPool  = 8   // distinct batches, cycled
)

// BenchmarkAppend measures Log.Append beside raw Table.ApplyBulk, in the
// same run and interleaved batch by batch so that a shared server's noise
// hits all alike, each on a table of its own with the log's schema:
//
//   - log: Append of 500 events (half inserted, half completed, one per job);
//   - raw: one ApplyBulk of exactly the rows and cells that Append writes
//     (a job row, a time row and an index row per event), prepared
//     beforehand: the log's own cost is the difference;
//   - one-row: one ApplyBulk of one row per event holding the same encoded
//     event: the cost of the log's write amplification shows here.
//
// log/raw-% and log/one-row-% are the log's throughput as a share of each.
// MB/s counts encoded events, so it is comparable across the three.
func BenchmarkAppend(b *testing.B) {
	for _, be := range benchBackends {
		b.Run(be.name, func(b *testing.B) {
			addr := be.start(b)
			for _, q := range []int{200, 2000, 20000} {
				b.Run(fmt.Sprintf("query=%dB", q), func(b *testing.B) { benchAppend(b, addr, q) })
			}
		})
	}
}

// benchRows is one batch of events and the rows the baselines write.
type benchRows struct {
	evs                []events.Event
	rawKeys, oneKeys   []string
	rawMuts, oneMuts   []*bigtable.Mutation
	encodedEventsBytes int
}

func benchAppend(b *testing.B, addr string, querySize int) {
	ctx := b.Context()
	batches := make([]benchRows, benchPool)
	for i := range batches {
		batches[i] = newBenchRows(b, i, querySize)
	}
	l := benchLog(b, addr)
	raw, one := benchTable(b, addr), benchTable(b, addr)
	var tLog, tRaw, tOne time.Duration
	n, bytes := 0, 0
	for b.Loop() {
		r := &batches[n%benchPool]
		n++
		bytes += r.encodedEventsBytes
		tLog += timed(b, func() error { return l.Append(ctx, r.evs) })
		tRaw += timed(b, func() error { return applyBulk(ctx, raw, r.rawKeys, r.rawMuts) })
		tOne += timed(b, func() error { return applyBulk(ctx, one, r.oneKeys, r.oneMuts) })
	}
	evs, mb := float64(n*benchBatch), float64(bytes)/1e6
	for _, m := range []struct {
		name string
		d    time.Duration
	}{{"log", tLog}, {"raw", tRaw}, {"one-row", tOne}} {
		b.ReportMetric(evs/m.d.Seconds(), m.name+"-events/s")
		b.ReportMetric(mb/m.d.Seconds(), m.name+"-MB/s")
	}
	b.ReportMetric(100*tRaw.Seconds()/tLog.Seconds(), "log/raw-%")
	b.ReportMetric(100*tOne.Seconds()/tLog.Seconds(), "log/one-row-%")
	b.ReportMetric(float64(len(batches[0].rawKeys))/benchBatch, "rows/event")
}

func benchLog(b *testing.B, addr string) *events.Log {
	bt := logtest.Open(b, addr)
	l, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table})
	if err != nil {
		b.Fatal(err)
	}
	return l
}

func benchTable(b *testing.B, addr string) *bigtable.Table {
	bt := logtest.Open(b, addr)
	return bt.Client.Open(bt.Table)
}

// newBenchRows makes batch i: events of distinct jobs, half of them
// inserted (so their jobs enter the index), half completed (so theirs leave).
func newBenchRows(b *testing.B, i, querySize int) benchRows {
	var r benchRows
	for j := range benchBatch {
		e := life(i*benchBatch+j, time.Duration(i)*time.Second, true)[2*(j%2)]
		e.Query = strings.Repeat("x", querySize)
		r.evs = append(r.evs, e)
	}
	var err error
	if r.rawKeys, r.rawMuts, err = events.RowsOf(r.evs); err != nil {
		b.Fatal(err)
	}
	for _, e := range r.evs {
		v, err := events.EncodeEvent(&e)
		if err != nil {
			b.Fatal(err)
		}
		m := bigtable.NewMutation()
		m.Set("e", "e", bigtable.Time(e.Time), v)
		r.oneKeys = append(r.oneKeys, events.TimeRowKey(e.Time, e.ID))
		r.oneMuts = append(r.oneMuts, m)
		r.encodedEventsBytes += len(v)
	}
	return r
}

func timed(b *testing.B, f func() error) time.Duration {
	start := time.Now()
	if err := f(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func applyBulk(ctx context.Context, t *bigtable.Table, keys []string, muts []*bigtable.Mutation) error {
	errs, err := t.ApplyBulk(ctx, keys, muts)
	if err != nil {
		return err
	}
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
