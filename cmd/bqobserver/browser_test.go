package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/bqobserver/bqobserver/internal/testutil/browser"
)

// TestBrowserEmbedded drives headless Chromium against the embedded mode,
// the simulated organization included: the page shows simulated jobs, the
// search narrows the list, and a job that completes (cancelled through the
// simulated jobs API) leaves the table within seconds.
func TestBrowserEmbedded(t *testing.T) {
	browser.Binary(t)
	base, stop := runService(t, "--simulate-rate", "4")
	defer stop()
	b := browser.Start(t)
	b.Describe = `document.querySelector("#count")?.textContent`
	// Displayed rows, judged by the computed style, not the hidden attribute.
	const rows = `[...document.querySelectorAll(".vt-body .vt-row")].filter(r => getComputedStyle(r).display !== "none")`

	b.Run(t, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(base+"/"))
	b.Until(t, "waiting for simulated jobs", rows+`.length >= 10`, 90*time.Second)
	b.Until(t, "waiting for the live stream", `document.querySelector("#conn").dataset.state === "live"`, 10*time.Second)
	b.Screenshot(t, "embedded-list")

	// Search for the user with the most jobs listed (so that some are still
	// running a moment later): the list narrows to that user's jobs.
	user := busiestUser(t, base, 3)
	b.Run(t, "searching", chromedp.SendKeys("#f-q", user), chromedp.SendKeys("#f-q", kb.Enter))
	b.Until(t, "waiting for the search in the URL", fmt.Sprintf(`new URLSearchParams(location.search).get("q") === %q`, user), 5*time.Second)
	b.Until(t, "waiting for the list to narrow", fmt.Sprintf(`%s.length > 0 && %s.every(r => r.textContent.includes(%q))`, rows, rows, user), 10*time.Second)
	b.Screenshot(t, "embedded-search")

	// Cancel a listed job through the simulated BigQuery API: its completion
	// entries flow through ingest, the log and the stream, and the row goes.
	var target string
	b.Eval(t, rows+`[0].dataset.id`, &target)
	cancelSimulatedJob(t, base, target)
	b.Until(t, "waiting for the cancelled job to leave", fmt.Sprintf(`!%s.some(r => r.dataset.id === %q)`, rows, target), 10*time.Second)
	b.Screenshot(t, "embedded-after-cancel")
}

// userCount is a group of the summary's by_user.
type userCount struct {
	Key  string `json:"key"`
	Jobs int    `json:"jobs"`
}

// busiestUser waits until some user has at least min jobs listed and
// returns the one with the most.
func busiestUser(t *testing.T, base string, min int) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var sum struct {
			ByUser []userCount `json:"by_user"`
		}
		resp, err := http.Get(base + "/api/v1/summary")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&sum)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("reading the summary: %v", err)
		}
		best := slices.MaxFunc(append(sum.ByUser, userCount{}), func(a, b userCount) int { return a.Jobs - b.Jobs })
		if best.Jobs >= min {
			return best.Key
		}
		if time.Now().After(deadline) {
			t.Fatalf("no user had %d jobs listed within a minute", min)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// cancelSimulatedJob calls jobs.cancel on the simulated organization for the
// job the page identifies as project/location/job_id.
func cancelSimulatedJob(t *testing.T, base, id string) {
	t.Helper()
	parts := strings.SplitN(id, "/", 3)
	if len(parts) != 3 {
		t.Fatalf("row id %q is not project/location/job_id", id)
	}
	u := fmt.Sprintf("%s%s/bigquery/v2/projects/%s/jobs/%s/cancel?location=%s", base, simulationPath,
		url.PathEscape(parts[0]), url.PathEscape(parts[2]), url.QueryEscape(parts[1]))
	resp, err := http.Post(u, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("cancelling %s answered %d", id, resp.StatusCode)
	}
}
