package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/browser"
	"github.com/bqobserver/bqobserver/projections/access"
)

// TestPageAsViewer drives the page as a viewer without show_queries: other
// people's query text reads as hidden, in the list and in the detail, the
// viewer's own reads whole, no Cancel button is offered (the command to copy
// is), and bidirectional control characters in names show as code points
// instead of reordering the page.
func TestPageAsViewer(t *testing.T) {
	browser.Binary(t)
	bob := access.Principal{Email: "bob@acme.example", Role: access.RoleViewer, Method: access.ModeIAP}
	o := newOrgAs(t, 30, bob)
	at := o.now()
	job := func(id, principal, query string, labels map[string]string) events.Event {
		f := events.Facts{Principal: principal, JobType: events.JobTypeQuery, Query: query, Labels: labels, CreateTime: at, StartTime: at}
		return o.event(events.KindInserted, events.JobKey{Project: "acme-bi", Location: "US", JobID: id}, at, events.StateRunning, f)
	}
	o.feed(
		job("probe_other", "alice@acme.example", "SELECT secret_probe FROM t", nil),
		job("probe_own", "bob@acme.example", "SELECT mine_probe FROM t", nil),
		job("probe_bidi_\u202Egnp.exe", "mallory\u202E@acme.example", "SELECT 1", map[string]string{"team": "\u2067ops\u2069"}),
	)
	b := startBrowser(t)
	b.Run(t, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(o.URL()+"?q=probe_"))
	b.Until(t, "waiting for the probes", countIs(3), waitFor)
	row := func(id string) string { return `document.querySelector('.vt-row[data-id="acme-bi/US/` + id + `"]')` }
	b.Until(t, "other people's query reads as hidden", row("probe_other")+`?.querySelector(".query").textContent === "hidden"`, waitFor)
	b.Until(t, "the viewer's own query reads whole", row("probe_own")+`?.querySelector(".query").textContent.includes("mine_probe")`, waitFor)
	b.Until(t, "bidirectional controls show as code points",
		row("probe_bidi_\u202Egnp.exe")+`.innerText.includes("probe_bidi_[U+202E]gnp.exe") && `+row("probe_bidi_\u202Egnp.exe")+`.innerText.includes("mallory[U+202E]@acme.example")`, waitFor)
	noRawBidi(t, b)
	b.Screenshot(t, "viewer-list")
	b.Run(t, "opening the job with bidirectional controls", chromedp.Click(".vt-row[data-id=\"acme-bi/US/probe_bidi_\u202Egnp.exe\"]", chromedp.ByQuery))
	b.Until(t, "its labels show them as code points", `document.querySelector("#detail .tags")?.innerText.includes("team=[U+2067]ops[U+2069]")`, waitFor)
	noRawBidi(t, b)

	b.Run(t, "opening another user's job", chromedp.Click(`.vt-row[data-id="acme-bi/US/probe_other"]`, chromedp.ByQuery))
	b.Until(t, "the detail says the query is hidden", `document.querySelector("#detail .hidden-query") !== null`, waitFor)
	b.Until(t, "the detail offers the command to copy", `document.querySelector("#detail .cmd-text") !== null`, waitFor)
	var button bool
	b.Eval(t, `document.querySelector("#detail [data-action=cancel]") !== null`, &button)
	if button {
		t.Error("a viewer is offered the Cancel button")
	}
	var body string
	b.Eval(t, `document.body.innerText`, &body)
	if strings.Contains(body, "secret_probe") {
		t.Error("the page shows another user's query text to a viewer")
	}
	b.Screenshot(t, "viewer-detail")
}

// noRawBidi checks that the page shows no bidirectional control character
// as it is.
func noRawBidi(t *testing.T, b *browser.Browser) {
	t.Helper()
	var raw bool
	b.Eval(t, `/[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/.test(document.body.innerText)`, &raw)
	if raw {
		t.Error("the page shows a bidirectional control character as it is")
	}
}
