package history

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bqobserver/bqobserver/events"
)

// These tests run the sink behind the consumer, as the service does, with
// a fake Storage Write API that answers as BigQuery documents it does. The
// emulator cannot stand in for BigQuery here: it answers every failed append
// with INTERNAL, which BigQuery uses for transient failures, so it never
// refuses a row for good.

// TestRefusedRowIsDeadLettered: the events of a job whose row BigQuery
// refuses go to the dead-letter topic with the reason row_rejected and
// BigQuery's message; the rows of the other jobs are written.
func TestRefusedRowIsDeadLettered(t *testing.T) {
	log := newLog(t)
	f := &fakeStream{}
	s := newFakeSink(t, log, f, Config{})
	fd := startFeed(t, log, s.Handle)
	var evs []events.Event
	for _, id := range []string{"good_1", "bad_2", "good_3"} {
		evs = append(evs, queryJob(id, doneFacts(1<<30), nil)...)
	}
	fd.append(evs)
	waitForVersions(t, f, map[string]int64{"good_1": 3, "good_3": 3})
	want := map[string][2]string{}
	for _, e := range eventsOf("bad_2", evs) {
		want[e.ID] = [2]string{ReasonRowRejected, "FIELDS_ERROR: Field value of query cannot be bad"}
	}
	got := fd.deadLetters(2 * time.Second)
	for id, v := range got {
		if i := strings.Index(v[1], "FIELDS_ERROR"); i >= 0 {
			got[id] = [2]string{v[0], v[1][i:]}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	// Every event of a good job makes a row, and a redelivery one more.
	rows := map[string]int{}
	for _, id := range jobIDs(f.written(t)) {
		rows[id]++
	}
	if len(rows) != 2 || rows["good_1"] < 3 || rows["good_3"] < 3 {
		t.Errorf("rows written by job: %v, want at least 3 for each of good_1 and good_3 and none for another", rows)
	}
}

// TestOutageLosesNothing: BigQuery fails every append for a while; the
// events are retried, handed back to Pub/Sub and redelivered, none is
// dead-lettered, and once BigQuery is back every job's latest version is
// written.
func TestOutageLosesNothing(t *testing.T) {
	log := newLog(t)
	var down atomic.Bool
	down.Store(true)
	f := &fakeStream{fail: func() error {
		if down.Load() {
			return status.Error(codes.Unavailable, "connection refused")
		}
		return nil
	}}
	s := newFakeSink(t, log, f, Config{})
	fd := startFeed(t, log, s.Handle)
	var evs []events.Event
	var jobs []string
	for i := range 20 {
		id := fmt.Sprintf("job_%02d", i)
		jobs = append(jobs, id)
		evs = append(evs, queryJob(id, doneFacts(1<<30), nil)...)
	}
	fd.append(evs)
	waitUntil(t, "appends to fail", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.appends) == 0 && counter(s.metrics.rows.WithLabelValues(outcomeFailed)) >= 10
	})
	down.Store(false)
	want := map[string]int64{}
	for _, id := range jobs {
		want[id] = 3
	}
	waitForVersions(t, f, want)
	if got := fd.deadLetters(time.Second); len(got) > 0 {
		t.Errorf("%d events dead-lettered during an outage; want none: %v", len(got), got)
	}
}

// waitForVersions waits, for up to three minutes, until the latest row of
// every job in want folds want[job] events, and fails with the jobs that
// lack it. Delivery is at least once, so a count of rows says nothing
// about which jobs have them.
func waitForVersions(t *testing.T, f *fakeStream, want map[string]int64) {
	t.Helper()
	latest := map[string]int64{}
	behind := func() []string {
		clear(latest)
		for _, r := range f.written(t) {
			latest[r["job_id"].(string)] = max(latest[r["job_id"].(string)], r["event_count"].(int64))
		}
		var out []string
		for id, n := range want {
			if latest[id] != n {
				out = append(out, fmt.Sprintf("%s: latest version folds %d events, want %d", id, latest[id], n))
			}
		}
		slices.Sort(out)
		return out
	}
	deadline := time.Now().Add(3 * time.Minute)
	for len(behind()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, b := range behind() {
		t.Error(b)
	}
}
