package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/simulation"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/internal/testutil/pubsubtest"
)

// BenchmarkFreshness measures how long a job takes from the moment its
// audit entry is published to the moment it shows in /api/v1/jobs and on
// /api/v1/stream, over 1,000 jobs published at 50 per second into a running
// service. It reports p50 and p99 of both. Run it on the emulators for the
// numbers the README quotes (the in-process Pub/Sub paces deliveries):
//
//	PUBSUB_EMULATOR_HOST=… BIGTABLE_EMULATOR_HOST=… go test -run '^$' -bench Freshness -benchtime 1x ./cmd/bqobserver/
func BenchmarkFreshness(b *testing.B) {
	pubsubtest.RequireEmulator(b)
	logtest.RequireEmulator(b)
	const jobs = 1000
	entries := insertions(b, jobs)
	project := pubsubtest.Project(b)
	base, stop := startService(b, "--no-simulate", "--project", project)
	defer stop()
	client, err := pubsub.NewClient(b.Context(), project)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	pub := client.Publisher("bq-audit")
	defer pub.Stop()

	waitReady(b, base)
	w := newWatch(len(entries))
	defer w.stop() // before the service stops: the poller must not outlive it
	go w.stream(b, base+"/api/v1/stream")
	<-w.ready
	w.polling.Go(func() { w.poll(b, base+"/api/v1/jobs?sort=-created&limit=100") })
	b.ResetTimer()
	for _, e := range entries {
		w.published(e.Meant[0].Job)
		pub.Publish(b.Context(), &pubsub.Message{Data: e.Data, Attributes: e.Attributes})
		time.Sleep(20 * time.Millisecond)
	}
	listed, streamed := w.wait(b, 30*time.Second)
	b.StopTimer()
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"list", listed}, {"stream", streamed}} {
		b.ReportMetric(float64(percentile(m.d, 50).Microseconds())/1000, m.name+"-p50-ms")
		b.ReportMetric(float64(percentile(m.d, 99).Microseconds())/1000, m.name+"-p99-ms")
	}
}

// waitReady waits until the service reports ready (rebuilt and live).
func waitReady(b testing.TB, base string) {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	b.Fatal("the service was not ready within a minute")
}

// insertions returns the v2 insertion entries of n simulated jobs, stamped
// around now.
func insertions(b *testing.B, n int) []simulation.Entry {
	org, err := simulation.New(simulation.Config{Seed: 7, Rate: 20, Start: time.Now(), Formats: []string{"v2"}, Delivery: &simulation.Delivery{}})
	if err != nil {
		b.Fatal(err)
	}
	var out []simulation.Entry
	for e := range org.Generate(time.Hour) {
		if e.Kind() == string(events.KindInserted) && e.Meant[0].State != events.StateDone {
			out = append(out, e)
			if len(out) == n {
				break
			}
		}
	}
	return out
}

// watch records when each published job was published, first listed and
// first streamed.
type watch struct {
	mu       sync.Mutex
	pub      map[string]time.Time
	listed   map[string]time.Duration
	streamed map[string]time.Duration
	want     int
	ready    chan struct{}
	stopped  chan struct{}
	polling  sync.WaitGroup
}

// stop ends the poller and waits for it.
func (w *watch) stop() {
	close(w.stopped)
	w.polling.Wait()
}

func newWatch(n int) *watch {
	return &watch{pub: map[string]time.Time{}, listed: map[string]time.Duration{}, streamed: map[string]time.Duration{},
		want: n, ready: make(chan struct{}), stopped: make(chan struct{})}
}

func (w *watch) published(k events.JobKey) {
	w.mu.Lock()
	w.pub[keyID(k)] = time.Now()
	w.mu.Unlock()
}

func keyID(k events.JobKey) string { return k.Project + "/" + k.Location + "/" + k.JobID }

func (w *watch) seen(into map[string]time.Duration, k events.JobKey, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	id := keyID(k)
	if p, ok := w.pub[id]; ok {
		if _, dup := into[id]; !dup {
			into[id] = at.Sub(p)
		}
	}
}

// stream follows the SSE stream and records each job's first appearance.
func (w *watch) stream(b *testing.B, url string) {
	resp, err := http.Get(url)
	if err != nil {
		b.Error(err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Errorf("stream answered %s", resp.Status)
	}
	close(w.ready)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var event string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:") && event == "added":
			var d struct {
				Key events.JobKey `json:"key"`
			}
			if json.Unmarshal([]byte(strings.TrimPrefix(line, "data:")), &d) == nil {
				w.seen(w.streamed, d.Key, time.Now())
			}
		}
	}
}

// poll lists the newest jobs every few milliseconds and records each job's
// first appearance.
func (w *watch) poll(b *testing.B, url string) {
	for !w.done() {
		select {
		case <-w.stopped:
			return
		default:
		}
		resp, err := http.Get(url)
		if err != nil {
			b.Error(err)
			return
		}
		var page struct {
			Jobs []struct {
				Key events.JobKey `json:"key"`
			} `json:"jobs"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			b.Error(err)
			return
		}
		at := time.Now() // when the answer was in: never earlier than the truth
		for _, j := range page.Jobs {
			w.seen(w.listed, j.Key, at)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (w *watch) done() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.listed) >= w.want && len(w.streamed) >= w.want
}

func (w *watch) wait(b *testing.B, limit time.Duration) (listed, streamed []time.Duration) {
	deadline := time.Now().Add(limit)
	for !w.done() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.listed) < w.want || len(w.streamed) < w.want {
		b.Fatalf("after %v: %d of %d jobs listed, %d streamed", limit, len(w.listed), w.want, len(w.streamed))
	}
	for _, d := range w.listed {
		listed = append(listed, d)
	}
	for _, d := range w.streamed {
		streamed = append(streamed, d)
	}
	return listed, streamed
}

func percentile(d []time.Duration, p int) time.Duration {
	slices.Sort(d)
	return d[min(len(d)-1, len(d)*p/100)]
}
