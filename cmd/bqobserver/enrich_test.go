package main

import (
	"encoding/json"
	"regexp"
	"strconv"
	"testing"
	"time"
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
