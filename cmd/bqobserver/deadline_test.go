package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// TestCancelRecordIsBounded cancels a running job of the simulated
// organization while the event log's writes hang: BigQuery (the
// simulation's jobs API) accepts the cancel, and the request answers 503
// with Retry-After once --request-timeout has passed, not after the
// appender's own write timeout or the cancel's 30 s.
func TestCancelRecordIsBounded(t *testing.T) {
	const timeout = time.Second
	bt, base := serveOnHangingBigtable(t, "--request-timeout", timeout.String(), "--simulate-rate", "20")
	var page struct {
		Jobs []struct {
			Key events.JobKey `json:"key"`
		} `json:"jobs"`
	}
	waitUntil(t, "simulated jobs to be listed", func() bool {
		_, _, body := call(t, "GET", base+"/api/v1/jobs?state=RUNNING&limit=10", "")
		return json.Unmarshal([]byte(body), &page) == nil && len(page.Jobs) > 0
	})
	bt.answering.Store(false)
	k := page.Jobs[0].Key
	start := time.Now()
	status, header, body := call(t, "POST", base+"/api/v1/jobs/"+k.Project+"/"+k.Location+"/"+k.JobID+":cancel", "", "Content-Type", "application/json")
	took := time.Since(start)
	if status != http.StatusServiceUnavailable || header.Get("Retry-After") == "" || !strings.Contains(body, "recording the cancel request") {
		t.Errorf("cancel while the log's writes hang: %d, Retry-After %q, %s; want 503 with Retry-After, saying the request was not recorded",
			status, header.Get("Retry-After"), body)
	}
	if took > timeout+2*time.Second {
		t.Errorf("the cancel request answered after %s, beyond --request-timeout %s and a slack of 2s", took, timeout)
	}
}

// TestHistoryTimeout asks the history API for the last hour while the
// event log's reads hang: it answers 503 with Retry-After once
// --history-timeout has passed.
func TestHistoryTimeout(t *testing.T) {
	const timeout = time.Second
	bt, base := serveOnHangingBigtable(t, "--history-timeout", timeout.String(), "--no-simulate")
	waitReady(t, base)
	bt.hangReads.Store(true)
	start := time.Now()
	status, header, body := call(t, "GET", base+"/api/v1/history", "")
	took := time.Since(start)
	if status != http.StatusServiceUnavailable || header.Get("Retry-After") == "" || !strings.Contains(body, "within "+timeout.String()) {
		t.Errorf("history while the log's reads hang: %d, Retry-After %q, %s; want 503 with Retry-After, naming the bound",
			status, header.Get("Retry-After"), body)
	}
	if took < timeout || took > timeout+2*time.Second {
		t.Errorf("the history answered after %s, want shortly after --history-timeout %s", took, timeout)
	}
	bt.hangReads.Store(false)
}

// serveOnHangingBigtable starts the service with args on an in-process
// Pub/Sub and a hangingBigtable that answers until told otherwise, and
// returns both the Bigtable and the service's base URL; the service stops
// when the test ends.
func serveOnHangingBigtable(t *testing.T, args ...string) (*hangingBigtable, string) {
	t.Helper()
	bt := startHangingBigtable(t)
	bt.answering.Store(true)
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("BIGTABLE_EMULATOR_HOST", bt.addr)
	addr, stop := startService(t, args...)
	t.Cleanup(func() { stop() })
	return bt, "http://" + strings.TrimPrefix(addr, "http://")
}

// TestRebuildOnStalledBigtable starts the service while the event log's
// reads hang: its rebuild gives up once Bigtable has sent nothing for
// --bigtable-stall-timeout and is tried again, saying why, rather than at
// the end of its 5-minute attempt; once the reads answer, the service is
// ready.
func TestRebuildOnStalledBigtable(t *testing.T) {
	bt := startHangingBigtable(t)
	bt.answering.Store(true)
	bt.hangReads.Store(true)
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("BIGTABLE_EMULATOR_HOST", bt.addr)
	addr, stop, logged := startRunLogged(t, "run", "--http-addr", "127.0.0.1:0", "--no-simulate", "--bigtable-stall-timeout", "300ms")
	t.Cleanup(func() { stop() })
	const want = "Bigtable sent nothing for 300ms"
	deadline := time.Now().Add(20 * time.Second) // the attempt's own bound is 5 minutes
	for !strings.Contains(logged(), want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logged(), want) || !strings.Contains(logged(), "preparing the projection failed; trying again") {
		t.Fatalf("no rebuild gave up on the stalled reads within 20s; the service logged:\n%s", logged())
	}
	bt.hangReads.Store(false)
	waitReady(t, "http://"+strings.TrimPrefix(addr, "http://"))
}
