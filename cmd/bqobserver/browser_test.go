package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestBrowserEmbedded drives headless Chromium against the embedded mode,
// the simulated organization included: the page shows simulated jobs, the
// search narrows the list, and a job that completes (cancelled through the
// simulated jobs API) leaves the table within seconds.
func TestBrowserEmbedded(t *testing.T) {
	chromium := os.Getenv("BQOBSERVER_CHROMIUM")
	if chromium == "" {
		t.Skip("browser test skipped: set BQOBSERVER_CHROMIUM to a Chromium binary (for example /usr/bin/chromium); .ci/run does")
	}
	base, stop := runService(t, "--simulate-rate", "4")
	defer stop()
	ctx := startChromium(t, chromium)
	run := func(doing string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", doing, err)
		}
	}
	until := func(doing, expr string, within time.Duration) {
		t.Helper()
		var ok bool
		if err := chromedp.Run(ctx, chromedp.Poll(expr, &ok, chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
			var shows string
			chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector("#count")?.textContent`, &shows))
			t.Fatalf("%s: %s did not hold within %v (%v); the page shows %q", doing, expr, within, err, shows)
		}
	}
	// Displayed rows, judged by the computed style, not the hidden attribute.
	const rows = `[...document.querySelectorAll(".vt-body .vt-row")].filter(r => getComputedStyle(r).display !== "none")`

	run("loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(base+"/"))
	until("waiting for simulated jobs", rows+`.length >= 10`, 90*time.Second)
	until("waiting for the live stream", `document.querySelector("#conn").dataset.state === "live"`, 10*time.Second)
	screenshot(t, ctx, "embedded-list")

	// Search for the user with the most jobs listed (so that some are still
	// running a moment later): the list narrows to that user's jobs.
	user := busiestUser(t, base, 3)
	run("searching", chromedp.SendKeys("#f-q", user), chromedp.SendKeys("#f-q", kb.Enter))
	until("waiting for the search in the URL", fmt.Sprintf(`new URLSearchParams(location.search).get("q") === %q`, user), 5*time.Second)
	until("waiting for the list to narrow", fmt.Sprintf(`%s.length > 0 && %s.every(r => r.textContent.includes(%q))`, rows, rows, user), 10*time.Second)
	screenshot(t, ctx, "embedded-search")

	// Cancel a listed job through the simulated BigQuery API: its completion
	// entries flow through ingest, the log and the stream, and the row goes.
	var target string
	run("choosing a job", chromedp.Evaluate(rows+`[0].dataset.id`, &target))
	cancelSimulatedJob(t, base, target)
	until("waiting for the cancelled job to leave", fmt.Sprintf(`!%s.some(r => r.dataset.id === %q)`, rows, target), 10*time.Second)
	screenshot(t, ctx, "embedded-after-cancel")
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

// startChromium starts headless Chromium with a fresh profile for the test.
func startChromium(t *testing.T, path string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.UserDataDir(t.TempDir())}
	for _, f := range []string{"headless", "no-sandbox", "disable-gpu", "disable-quic", "no-first-run",
		"disable-background-networking", "disable-component-update", "disable-sync"} {
		opts = append(opts, chromedp.Flag(f, true))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// screenshot saves the viewport among the test's artifacts (kept with
// go test -artifacts).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.CaptureScreenshot(&png)); err != nil {
		t.Fatalf("taking screenshot %s: %v", name, err)
	}
	path := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
