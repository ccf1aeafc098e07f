package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/browser"
	"github.com/bqobserver/bqobserver/internal/testutil/tokentest"
)

// TestBrowserCancel drives headless Chromium, as an admin behind
// Identity-Aware Proxy, against the embedded mode: the admin opens a
// running simulated job, cancels it with a reason through the Cancel
// button and its confirmation, the job leaves the list, and its timeline
// names who cancelled it and why.
func TestBrowserCancel(t *testing.T) {
	browser.Binary(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("BIGTABLE_EMULATOR_HOST", "")
	iss := tokentest.New(t)
	base, stop := startService(t, "--simulate-rate", "4", "--auth", "iap", "--iap-audience", iapAudience,
		"--policy", writePolicy(t, testPolicy), "--auth-jwks-url", iss.JWKSURL)
	defer stop()
	assertion := iss.IAP(t, tokentest.Standard(tokentest.IAPIssuer, iapAudience, adminEmail))
	b := browser.Start(t)
	b.Describe = `document.querySelector("#count")?.textContent + " | " + (document.querySelector("dialog[open]")?.innerText ?? "")`
	const rows = `[...document.querySelectorAll(".vt-body .vt-row")].filter(r => getComputedStyle(r).display !== "none")`

	b.Run(t, "sending the admin's IAP assertion with every request", network.Enable(),
		network.SetExtraHTTPHeaders(network.Headers{"X-Goog-Iap-Jwt-Assertion": assertion}))
	b.Run(t, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(base+"/"))
	b.Until(t, "waiting for running simulated jobs", rows+`.filter(r => r.textContent.includes("Running")).length >= 3`, 90*time.Second)
	b.Until(t, "waiting for the live stream", `document.querySelector("#conn").dataset.state === "live"`, 10*time.Second)

	// The longest-running job is first; one that has run a while is likely
	// to run a while longer (the simulated durations have a long tail).
	target := longRunningJob(t, base, assertion)
	b.Until(t, "waiting for the job in the list", fmt.Sprintf(`%s.some(r => r.dataset.id === %q)`, rows, target), 10*time.Second)
	sel := fmt.Sprintf(`.vt-row[data-id=%q]`, target)
	b.Run(t, "opening the job", chromedp.Click(sel, chromedp.ByQuery))
	b.Until(t, "waiting for the Cancel button", `document.querySelector("#detail [data-action=cancel]:not(:disabled)") !== null`, 10*time.Second)
	b.Run(t, "asking to cancel", chromedp.Click(`#detail [data-action=cancel]`, chromedp.ByQuery))
	b.Until(t, "waiting for the confirmation", `document.querySelector("dialog.confirm[open]") !== null`, 5*time.Second)
	var confirmation string
	b.Eval(t, `document.querySelector("dialog.confirm").innerText`, &confirmation)
	jobID := target[strings.LastIndex(target, "/")+1:]
	for _, want := range []string{"Cancel job " + jobID + "?", "User", "Running for", "Slot-ms so far", "Bytes processed so far"} {
		if !strings.Contains(confirmation, want) {
			t.Errorf("the confirmation does not say %q:\n%s", want, confirmation)
		}
	}
	b.Screenshot(t, "cancel-confirmation")
	b.Run(t, "giving a reason and confirming",
		chromedp.SendKeys(`dialog.confirm textarea`, "runaway scan", chromedp.ByQuery),
		chromedp.Click(`dialog.confirm .button.danger`, chromedp.ByQuery))
	b.Until(t, "waiting for the job to leave the list", fmt.Sprintf(`!%s.some(r => r.dataset.id === %q)`, rows, target), 20*time.Second)
	b.Until(t, "waiting for the timeline to name who cancelled it",
		`[...document.querySelectorAll("#detail .timeline .k-cancel_requested")].some(li => li.innerText.includes("by `+adminEmail+`") && li.innerText.includes("reason: runaway scan"))`,
		10*time.Second)
	b.Screenshot(t, "cancelled")
}

// longRunningJob waits up to two minutes for a simulated job that has run
// for 20 seconds and returns its id as the page writes it.
func longRunningJob(t *testing.T, base, assertion string) string {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		_, _, body := call(t, "GET", base+"/api/v1/jobs?state=running&min_running=20s&limit=1", "", "X-Goog-Iap-Jwt-Assertion", assertion)
		var page struct {
			Jobs []struct {
				Key events.JobKey `json:"key"`
			} `json:"jobs"`
		}
		if json.Unmarshal([]byte(body), &page) == nil && len(page.Jobs) > 0 {
			k := page.Jobs[0].Key
			return k.Project + "/" + k.Location + "/" + k.JobID
		}
	}
	t.Fatal("no simulated job ran for 20 seconds within two minutes")
	return ""
}
