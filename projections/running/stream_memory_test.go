package running

import (
	"fmt"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// subscribers returns how many streams follow the ring.
func (r *ring) subscribers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.subs)
}

// heapPeak samples the heap in use until stop is closed and returns the
// largest sample.
func heapPeak(stop <-chan struct{}) *atomic.Uint64 {
	var peak atomic.Uint64
	go func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return &peak
}

// TestStreamsThatNeverReadStayBounded opens 200 streams that never read and
// changes one job thousands of times, which would be gigabytes of stream
// data if the streams kept what their clients do not take: the heap stays
// within tens of megabytes, and every stream is cut, either because it fell
// further behind than the changes kept or because a write did not finish
// within the write timeout.
func TestStreamsThatNeverReadStayBounded(t *testing.T) {
	const clients = 200
	for _, tc := range []struct {
		name    string
		replay  int
		changes int
	}{
		{"they fall behind the changes kept", 256, 20000},
		{"their writes time out", 8192, 6000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := t0.Add(time.Hour)
			p, _ := newProjection(t, nil, now, Config{StreamReplay: tc.replay, StreamWriteTimeout: 500 * time.Millisecond})
			srv := httptest.NewServer(asAdmin(p.Handler()))
			t.Cleanup(srv.Close)
			for range clients {
				c, err := net.Dial("tcp", srv.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				fmt.Fprintf(c, "GET /api/v1/stream HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
			}
			waitUntil(t, 10*time.Second, "every stream to follow", func() bool { return p.changes.subscribers() == clients })
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			stop := make(chan struct{})
			peak := heapPeak(stop)
			s := jobStory("p", "US", "busy")
			mustApply(t, p, s.inserted(now, events.StateRunning, events.Facts{Query: strings.Repeat("SELECT 1 ", 100)}))
			for i := range tc.changes {
				mustApply(t, p, s.progress(now.Add(time.Duration(i+1)*time.Millisecond), int64(i), int64(i)))
			}
			waitUntil(t, 30*time.Second, "every stream to be cut", func() bool { return p.changes.subscribers() == 0 })
			close(stop)
			grew := int64(peak.Load()) - int64(before.HeapInuse)
			t.Logf("heap in use grew by at most %d MB while %d streams were offered %d changes", grew>>20, clients, tc.changes)
			if limit := int64(64 << 20); grew > limit {
				t.Errorf("the heap grew by %d MB, more than %d MB: streams keep what their clients do not read", grew>>20, limit>>20)
			}
		})
	}
}

// waitUntil polls cond until it holds, or fails t after within.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
