package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/pubsubtest"
)

// TestPlanSteady checks the entries a steady run makes ahead: they are due
// in order within the run, and they are, byte for byte, what the run's
// organization started at that moment delivers, with the probes the live
// path would note.
func TestPlanSteady(t *testing.T) {
	const seed, jobs, rate, d = 7, 100.0, 300.0, 4 * time.Second
	planned, start, err := planSteady(t.Context(), seed, jobs, rate, d, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	org, err := newLoadOrg(seed, jobs, start)
	if err != nil {
		t.Fatal(err)
	}
	i, probes := 0, 0
	for en := range org.Generate(d) {
		if i == len(planned) {
			t.Fatalf("planned %d entries, the organization delivers more", len(planned))
		}
		p := &planned[i]
		if !p.at.Equal(en.Published) || !bytes.Equal(p.data, en.Data) || fmt.Sprint(p.attrs) != fmt.Sprint(en.Attributes) || p.probe != probeOf(&en) {
			t.Fatalf("entry %d: planned %s %q %v %+v, the organization delivers %s %q %v %+v",
				i, p.at, p.data, p.attrs, p.probe, en.Published, en.Data, en.Attributes, probeOf(&en))
		}
		if p.at.Before(start) || p.at.After(start.Add(d)) || i > 0 && p.at.Before(planned[i-1].at) {
			t.Errorf("entry %d is due at %s: out of order, or outside the run [%s, %s]", i, p.at, start, start.Add(d))
		}
		if p.probe.ok {
			probes++
		}
		i++
	}
	if i != len(planned) || i < int(rate*d.Seconds())/4 {
		t.Errorf("planned %d entries, the organization delivers %d, for a run of about %g", len(planned), i, rate*d.Seconds())
	}
	if probes == 0 {
		t.Error("no planned entry carries a job event for the probes")
	}
}

// TestReplay checks that replay publishes each planned entry no sooner
// than it is due (less aheadSlack), in order, notes its probe, and stops
// publishing when its context ends.
func TestReplay(t *testing.T) {
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	c := pubsubtest.Client(t, srv.Addr, "p")
	if _, err := c.TopicAdminClient.CreateTopic(t.Context(), &pb.Topic{Name: "projects/p/topics/audit"}); err != nil {
		t.Fatal(err)
	}
	pub := newLoadPublisher(c, "audit", slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { pub.close(context.Background()) })
	now := time.Now()
	var planned []plannedEntry
	for i := range 6 {
		planned = append(planned, plannedEntry{at: now.Add(time.Duration(i) * 150 * time.Millisecond), data: fmt.Appendf(nil, "entry %d", i),
			probe: probe{project: "probed", jobID: fmt.Sprintf("job_%d", i), state: events.StateRunning, ok: true}})
	}
	due := map[string]time.Time{}
	for _, p := range planned {
		due[string(p.data)] = p.at
	}
	ctx, cancel := context.WithDeadline(t.Context(), now.Add(600*time.Millisecond)) // before the last two are due
	defer cancel()
	if err := pub.replay(ctx, planned); err != nil {
		t.Fatal(err)
	}
	if err := pub.sink.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) < 3 || len(msgs) > 5 || pub.published.Load() != int64(len(msgs)) {
		t.Fatalf("%d entries published (%d counted), want 3 to 5 of 6 before the end", len(msgs), pub.published.Load())
	}
	for i, m := range msgs {
		if want := fmt.Sprintf("entry %d", i); string(m.Data) != want {
			t.Errorf("message %d is %q, want %q", i, m.Data, want)
		}
		if at := due[string(m.Data)]; m.PublishTime.Before(at.Add(-aheadSlack)) {
			t.Errorf("%q published at %s, %s before it was due", m.Data, m.PublishTime, at.Sub(m.PublishTime))
		}
	}
	if got := pub.probeProject(); got != "probed" {
		t.Errorf("probe project %q, want %q", got, "probed")
	}
	if len(pub.probes) != len(msgs) {
		t.Errorf("%d probes noted for %d entries published", len(pub.probes), len(msgs))
	}
	for i := range len(msgs) {
		if planned[i].data != nil {
			t.Errorf("entry %d is still held after it was published", i)
		}
	}
}

// TestSteadyJobs checks that the organization of a steady run publishes
// the entries a second asked for, and at most 2% more, in the part of the
// run that is measured.
func TestSteadyJobs(t *testing.T) {
	const seed, rate, from, to = 3, 1500.0, 5 * time.Second, 25 * time.Second
	jobs, took, err := steadyJobs(seed, rate, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if took <= 0 {
		t.Errorf("making the entries took %s", took)
	}
	start := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	org, err := newLoadOrg(seed, jobs, start)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for en := range org.Generate(to) {
		if en.Published.Sub(start) >= from {
			n++
		}
	}
	if got := float64(n) / (to - from).Seconds(); got < rate || got > 1.02*rate {
		t.Errorf("%g jobs a second publish %.0f entries a second, want %g to 2%% more", jobs, got, rate)
	}
}

// TestLoadCheckAhead checks that a steady run too long to make ahead is
// refused with the way out, and that the same run made live, or as a
// backlog, is not.
func TestLoadCheckAhead(t *testing.T) {
	long := LoadCmd{Rate: 5000, Duration: time.Hour, Warmup: 30 * time.Second, Runs: 1, Interval: 10 * time.Second, Generate: "ahead"}
	if err := long.check(); err == nil || !strings.Contains(err.Error(), "--generate live") {
		t.Errorf("an hour at 5,000 entries/s made ahead: %v, want an error naming --generate live", err)
	}
	live := long
	live.Generate = "live"
	if err := live.check(); err != nil {
		t.Errorf("made live: %v", err)
	}
	backlog := long
	backlog.Backlog = 300000
	if err := backlog.check(); err != nil {
		t.Errorf("a backlog: %v", err)
	}
	short := long
	short.Duration = 2 * time.Minute
	if err := short.check(); err != nil {
		t.Errorf("two minutes made ahead: %v", err)
	}
}

// TestLoadCheckGoMemLimit checks that --cbtemulator-gomemlimit takes the
// sizes Go reads and refuses the rest before any emulator starts.
func TestLoadCheckGoMemLimit(t *testing.T) {
	c := LoadCmd{Rate: 5000, Duration: 2 * time.Minute, Warmup: 30 * time.Second, Runs: 1, Interval: 10 * time.Second, Generate: "ahead"}
	for limit, ok := range map[string]bool{"": true, "8GiB": true, "512MiB": true, "1073741824": true, "8GB": false, "8 GiB": false, "-1": false, "off": false} {
		c.BigtableLimit = limit
		err := c.check()
		if ok != (err == nil) {
			t.Errorf("--cbtemulator-gomemlimit %q: %v, want accepted %v", limit, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--cbtemulator-gomemlimit") {
			t.Errorf("--cbtemulator-gomemlimit %q: %v, want the flag named", limit, err)
		}
	}
}
