package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestLoadCaughtUp: the service has caught up once its settled count is at
// least the entries published and it holds none; redeliveries count again,
// so the count alone may reach it early. The moment is the first sample
// that showed the final count.
func TestLoadCaughtUp(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return start.Add(time.Duration(i) * time.Second) }
	// 1,000 entries: by 2 s 1,000 deliveries settled, 50 of them
	// redeliveries; the last 50 entries settle by 4 s, and the gauge shows
	// the last one's lag until 14 s (bus.LagHold).
	settled := []float64{0, 500, 1000, 1030, 1050, 1050, 1050, 1050, 1050, 1050, 1050, 1050, 1050, 1050, 1050, 1050}
	var samples []loadSample
	for i, n := range settled {
		oldest := 3.0 // entries in hand
		if i >= 4 {
			oldest = 1.2 // the last one's lag, held
		}
		if i >= 15 {
			oldest = 0
		}
		samples = append(samples, loadSample{at: at(i), received: n, ingestOldest: oldest})
	}
	var got []int
	for i := range samples {
		if t, ok := caughtUp(samples[:i+1], 1000); ok {
			got = append(got, int(t.Sub(start)/time.Second))
		} else {
			got = append(got, -1)
		}
	}
	want := []int{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 4}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("caught up at (s; -1: not yet), after each sample (-got +want):\n%s", diff)
	}
}

// TestLoadSampleTime: a sample is dated when its metrics are in hand, not
// before the scrape; a scrape that fails is counted and reported, and
// takes no sample.
func TestLoadSampleTime(t *testing.T) {
	var answeredAt atomic.Int64 // Unix nanoseconds
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		time.Sleep(200 * time.Millisecond)
		answeredAt.Store(time.Now().UnixNano())
		_, _ = w.Write([]byte("bqobserver_ingest_received_total{intake=\"pull\"} 7\n"))
	}))
	defer srv.Close()
	r := &loadRun{client: srv.Client(), svc: &loadService{base: srv.URL}, pub: &loadPublisher{}, emu: &loadEmulators{}}
	s := newLoadSampler(r)
	s.take(t.Context())
	if len(s.samples) != 1 {
		t.Fatalf("took %d samples, want 1", len(s.samples))
	}
	answered := time.Unix(0, answeredAt.Load())
	if sm := s.samples[0]; sm.at.Before(answered) || sm.received != 7 {
		t.Errorf("sample at %s with %g received; want at or after the metrics were answered, %s, with 7", sm.at.Format(time.StampMicro), sm.received, answered.Format(time.StampMicro))
	}
	fail.Store(true)
	s.take(t.Context())
	s.take(t.Context())
	res := &loadResult{start: time.Now()}
	r.cmd, r.env = &LoadCmd{Interval: time.Second}, &env{log: slog.New(slog.DiscardHandler)}
	s.finish(res)
	if res.sampled != 1 || res.sampleFailures != 3 || !strings.Contains(res.sampleErr, "503") {
		t.Errorf("%d samples, %d failed (%q); want 1 and 3 with the status", res.sampled, res.sampleFailures, res.sampleErr)
	}
}
