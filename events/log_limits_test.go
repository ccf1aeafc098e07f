package events_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/bigtable/apiv2/bigtablepb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
)

// maxReadRowsRequest is the largest ReadRows request Cloud Bigtable takes
// (bigtable.RowSet's doc); the in-process Bigtable takes any.
const maxReadRowsRequest = 512 << 10

// requestSizes records the largest ReadRows request sent.
type requestSizes struct {
	mu   sync.Mutex
	max  int
	sent int
}

type sizedStream struct {
	grpc.ClientStream
	r *requestSizes
}

func (s *sizedStream) SendMsg(m any) error {
	if req, ok := m.(*bigtablepb.ReadRowsRequest); ok {
		s.r.mu.Lock()
		s.r.max, s.r.sent = max(s.r.max, proto.Size(req)), s.r.sent+1
		s.r.mu.Unlock()
	}
	return s.ClientStream.SendMsg(m)
}

func (r *requestSizes) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return s, err
	}
	return &sizedStream{ClientStream: s, r: r}, nil
}

// TestReadJobsRequestSize: jobs with long ids (BigQuery allows 1,024
// characters) are read in requests Cloud Bigtable takes, however many the
// log's batch size would put in one.
func TestReadJobsRequestSize(t *testing.T) {
	r := &requestSizes{}
	l := newLog(t, logtest.NewBttest, events.LogConfig{}, grpc.WithChainStreamInterceptor(r.stream))
	var evs []events.Event
	keys := make([]events.JobKey, 2000)
	for i := range keys {
		keys[i] = events.JobKey{Project: "my-project", Location: "US", JobID: fmt.Sprintf("airflow_%s_%05d", strings.Repeat("x", 285), i)}
		if i%100 == 0 {
			evs = append(evs, events.Event{ID: fmt.Sprint("e", i), Kind: events.KindInserted, Job: keys[i], Time: at(0), State: events.StateRunning})
		}
	}
	appendAll(t, l, evs)
	read := 0
	if err := l.ReadJobs(t.Context(), keys, func(events.JobKey, []events.Event) error { read++; return nil }); err != nil {
		t.Fatal(err)
	}
	if r.max > maxReadRowsRequest || read != len(evs) {
		t.Errorf("read %d of %d jobs in %d requests, the largest %d bytes; want every job, in requests of at most %d", read, len(evs), r.sent, r.max, maxReadRowsRequest)
	}
}
