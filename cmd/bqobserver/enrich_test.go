package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bq "google.golang.org/api/bigquery/v2"

	"github.com/bqobserver/bqobserver/enrich"
	"github.com/bqobserver/bqobserver/enrich/jobsapi"
	"github.com/bqobserver/bqobserver/enrich/lease"
	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
)

// TestRunEnrichesFromSimulation starts the embedded mode, whose
// enrichment polls the simulated organization's jobs API on the service's
// own server: progress events are appended and running jobs show their
// slot-ms, and diagnostics say enrichment runs. With --no-enrich they say
// it does not.
func TestRunEnrichesFromSimulation(t *testing.T) {
	base, stop := runService(t, "--simulate-rate", "20", "--enrich-interval", "200ms")
	progress := regexp.MustCompile(`(?m)^bqobserver_enrich_progress_events_total (\d+)`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := progress.FindStringSubmatch(get(t, base+"/metrics"))
		if n, _ := strconv.Atoi(m[1]); m != nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no progress event within 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Some running job shows its slot-ms (jobs come and go: look again).
	for !runningWithSlotMs(t, base) {
		if time.Now().After(deadline) {
			t.Fatal("no running job showed its slot-ms within 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := diagnosticsOn(t, base); !got {
		t.Error("diagnostics say enrichment is off")
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code %d", code)
	}

	base, stop = runService(t, "--no-enrich")
	waitReady(t, base)
	if diagnosticsOn(t, base) {
		t.Error("diagnostics say enrichment runs with --no-enrich")
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

func runningWithSlotMs(t *testing.T, base string) bool {
	t.Helper()
	var page struct {
		Jobs []struct {
			SlotMs *int64 `json:"slot_ms"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(get(t, base+"/api/v1/jobs?state=running&sort=-slot_ms&limit=1")), &page); err != nil {
		t.Fatal(err)
	}
	return len(page.Jobs) > 0 && page.Jobs[0].SlotMs != nil
}

func diagnosticsOn(t *testing.T, base string) bool {
	t.Helper()
	var d struct {
		Enrichment bool `json:"enrichment"`
	}
	if err := json.Unmarshal([]byte(get(t, base+"/api/v1/diagnostics")), &d); err != nil {
		t.Fatal(err)
	}
	return d.Enrichment
}

// notReady is a job source whose list of open jobs is being rebuilt until
// ready is set; it has no open job.
type notReady struct{ ready atomic.Bool }

func (s *notReady) Ready() bool                                        { return s.ready.Load() }
func (s *notReady) CatchingUp() bool                                   { return false }
func (s *notReady) OpenJobs(func(string) bool) map[string][]events.Job { return nil }
func (s *notReady) Listed(events.JobKey) bool                          { return false }
func (s *notReady) Known(events.JobKey) bool                           { return false }
func (s *notReady) RecentProjects() []string                           { return nil }

// noAPI is a jobs API enrichment never needs to call here.
type noAPI struct{}

func (noAPI) ListOpen(context.Context, string, time.Time) ([]*bq.JobListJobs, error) { return nil, nil }
func (noAPI) Get(context.Context, events.JobKey) (*bq.Job, error)                    { return nil, jobsapi.ErrNotFound }
func (noAPI) TryGet(context.Context, events.JobKey) (*bq.Job, error)                 { return nil, jobsapi.ErrNotFound }

// noAppend is an appender nothing reaches here.
type noAppend struct{}

func (noAppend) Append(context.Context, []events.Event) error { return nil }

// TestEnrichmentLeasesWaitForTheProjection: while the projection is
// rebuilt, a replica takes no lease (another keeps every shard, and polls
// them); once it is ready it takes its share; once stopped, it has
// released every lease, so that the other holds them all at its next
// refresh.
func TestEnrichmentLeasesWaitForTheProjection(t *testing.T) {
	bt := logtest.NewBttest(t)
	const d = 400 * time.Millisecond
	src := &notReady{}
	leases, err := enrichLeases(bt.Client, bt.Table, d, src)
	if err != nil {
		t.Fatal(err)
	}
	other, err := lease.New(bt.Client, lease.Config{Table: bt.Table, Holder: "other", Duration: d})
	if err != nil {
		t.Fatal(err)
	}
	enr, err := enrich.New(enrich.Config{Interval: 20 * time.Millisecond}, enrich.Deps{API: noAPI{}, Jobs: src,
		Appender: noAppend{}, Leases: leases, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { other.Run(ctx, nil) }) // a failed refresh is retried at the next tick
	run := &enrichRun{done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() { errc <- run.run(ctx, enr, leases, slog.New(slog.DiscardHandler)) }()
	time.Sleep(4 * d)
	if n, m := leases.Held(), other.Held(); n != 0 || m != lease.Shards {
		t.Errorf("while the projection is rebuilt the replica holds %d shards and the other %d, want 0 and %d", n, m, lease.Shards)
	}
	src.ready.Store(true)
	waitFor(t, 20*d, func() bool { return leases.Held() == lease.Shards/2 },
		func() string {
			return fmt.Sprintf("the replica holds %d shards once ready, want %d", leases.Held(), lease.Shards/2)
		})
	cancel()
	if err := run.release(t.Context(), leases); err != nil {
		t.Errorf("releasing: %v", err)
	}
	if err := <-errc; err != nil {
		t.Errorf("running: %v", err)
	}
	wg.Wait()
	if n := leases.Held(); n != 0 {
		t.Errorf("the stopped replica holds %d shards", n)
	}
	if err := other.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := other.Held(); n != lease.Shards {
		t.Errorf("the other replica holds %d shards at its first refresh after the stop, want %d", n, lease.Shards)
	}
}
