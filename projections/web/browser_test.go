package web

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/browser"
)

// waitFor bounds every wait for the page to reach a state.
const waitFor = 5 * time.Second

// startBrowser starts Chromium for a test of the page; a failed wait
// reports the count the page shows and its URL state.
func startBrowser(t testing.TB) *browser.Browser {
	t.Helper()
	b := browser.Start(t)
	b.Describe = `document.querySelector("#count")?.textContent + " | " + location.search`
	return b
}

// visibleRows are the table rows that are displayed, judged by the computed
// style rather than the hidden attribute, so that a style that overrides the
// attribute shows up as a failure.
const visibleRows = `[...document.querySelectorAll(".vt-body .vt-row")].filter(r => getComputedStyle(r).display !== "none")`

const visibleRowIDs = visibleRows + `.map(r => r.dataset.id)`

// rowsByIndex maps the aria-rowindex of every displayed row to its job id.
const rowsByIndex = `Object.fromEntries(` + visibleRows + `.map(r => [r.getAttribute("aria-rowindex"), r.dataset.id]))`

// countIs is a condition on the job count the page shows.
func countIs(n int) string {
	return fmt.Sprintf(`document.querySelector("#count").textContent.startsWith("%s jobs")`, thousands(n))
}

// thousands writes n with a comma between groups of three digits, as the
// page does.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// TestPageInBrowser drives the page in headless Chromium against the real
// API over a projection fed with events: jobs appear, the search narrows
// the list through the API, the stream's changes and removals reach the
// table in place, a new job takes the place the API gives it, the stream
// resumes after it is cut, the detail panel works from the keyboard, and
// back and forward walk the URL state.
func TestPageInBrowser(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, 240)
	b := startBrowser(t)

	b.Run(t, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(o.URL()))
	b.Until(t, "waiting for rows", visibleRows+`.length > 10`, waitFor)
	b.Until(t, "waiting for the total", countIs(240), waitFor)
	b.Until(t, "waiting for the stream", `document.querySelector("#conn").dataset.state === "live"`, waitFor)
	b.Until(t, "waiting for the summary", `document.querySelectorAll("#by-project .chip").length > 0`, waitFor)
	b.Screenshot(t, "list")
	b.Eval(t, `window.connStates = []; new MutationObserver(() => connStates.push(document.querySelector("#conn").dataset.state))
		.observe(document.querySelector("#conn"), {attributes: true}); true`, new(bool))

	const term = "acme-ml-training"
	want := o.listed(url.Values{"q": {term}})
	searchNarrows(t, b, o, term, want)
	changeUpdatesInPlace(t, b, o)
	removedJobLeaves(t, b, o, len(want))
	newJobAppearsInOrder(t, b, o, term)
	reconnects(t, b, o)
	detailFromKeyboard(t, b)
	historyRestoresState(t, b, o)
}

// searchNarrows types a search and checks that the page asked the API for
// it and shows the API's answer, in the API's order.
func searchNarrows(t *testing.T, b *browser.Browser, o *org, term string, want []string) {
	t.Helper()
	if len(want) == 0 || len(want) >= len(o.seeded) {
		t.Fatalf("search term %q matches %d of %d jobs; pick one that narrows", term, len(want), len(o.seeded))
	}
	b.Run(t, "typing a search", chromedp.SendKeys("#f-q", term, chromedp.ByQuery))
	b.Until(t, "waiting for the narrowed list", countIs(len(want)), waitFor)
	reqs := o.rec.listQueries()
	if got := reqs[len(reqs)-1].Get("q"); got != term {
		t.Errorf("last list request has q=%q, want %q", got, term)
	}
	var rows map[string]string
	b.Eval(t, rowsByIndex, &rows)
	if len(rows) == 0 {
		t.Fatal("no rows shown for the search")
	}
	for index, id := range rows {
		i, err := strconv.Atoi(index)
		if err != nil || i < 2 || i-2 >= len(want) || want[i-2] != id {
			t.Errorf("row %s shows %s; the API lists %d jobs for %q and not this one there", index, id, len(want), term)
		}
	}
	var search string
	b.Eval(t, `location.search`, &search)
	if !strings.Contains(search, "q="+term) {
		t.Errorf("URL query %q does not hold the search", search)
	}
}

// changeUpdatesInPlace feeds a progress observation of the first job shown
// and checks that its row, the same element, shows the new slot-ms.
func changeUpdatesInPlace(t *testing.T, b *browser.Browser, o *org) {
	t.Helper()
	var id string
	b.Eval(t, visibleRows+`[0].dataset.id`, &id)
	b.Eval(t, `window.rowBefore = `+visibleRows+`[0]; true`, new(bool))
	o.feed(o.progress(id, 1_230_000_000_000))
	b.Until(t, "waiting for the changed slot-ms", fmt.Sprintf(
		`document.querySelector('.vt-row[data-id=%q] .c-slots .main')?.textContent === "1.23T"`, id), waitFor)
	var same bool
	b.Eval(t, fmt.Sprintf(`window.rowBefore === document.querySelector('.vt-row[data-id=%q]')`, id), &same)
	if !same {
		t.Errorf("the changed job's row was replaced, want it updated in place")
	}
}

// removedJobLeaves feeds the completion of a job shown and checks that its
// row leaves and the count drops.
func removedJobLeaves(t *testing.T, b *browser.Browser, o *org, matching int) {
	t.Helper()
	var ids []string
	b.Eval(t, visibleRowIDs, &ids)
	gone := ids[1]
	o.feed(o.finish(gone))
	b.Until(t, "waiting for the removed job to leave", fmt.Sprintf(`!%s.some(r => r.dataset.id === %q)`, visibleRows, gone), waitFor)
	b.Until(t, "waiting for the count to drop", countIs(matching-1), waitFor)
}

// newJobAppearsInOrder feeds a job that has run for five hours and checks
// that it appears where the API puts it: the list is sorted longest-running
// first, so near the top.
func newJobAppearsInOrder(t *testing.T, b *browser.Browser, o *org, term string) {
	t.Helper()
	key := events.JobKey{Project: "acme-ml-training", Location: "US", JobID: "bquxjob_new_longest"}
	start := o.now().Add(-5 * time.Hour)
	o.feed(o.event(events.KindInserted, key, start, events.StateRunning, events.Facts{
		Principal: "erin@acme.example", JobType: events.JobTypeQuery, StatementType: "SELECT",
		Query: "SELECT user_id FROM `acme-ml-training.raw.reviews`", CreateTime: start, StartTime: start,
	}), o.progress(idOf(key), 1000))
	want := slices.Index(o.listed(url.Values{"q": {term}, "sort": {"-running"}}), idOf(key))
	if want < 0 || want > 10 {
		t.Fatalf("the new job sorts at %d; want a position near the top so the test can see it", want)
	}
	b.Until(t, "waiting for the new job in its place", fmt.Sprintf(
		`document.querySelector('.vt-body .vt-row[data-id=%q]')?.getAttribute("aria-rowindex") === "%d"`, idOf(key), want+2), waitFor)
}

// reconnects cuts the stream by closing the server's connections and checks
// that the indicator says so, that the browser resumes from the last event
// the API sent it, and that changes flow again.
func reconnects(t *testing.T, b *browser.Browser, o *org) {
	t.Helper()
	before := o.rec.streamRequests()
	lastID := before[len(before)-1].LastID
	if lastID == "" {
		t.Fatal("the open stream carried no event id")
	}
	o.srv.CloseClientConnections()
	b.Until(t, "waiting for the indicator to show the reconnection",
		`connStates.includes("reconnecting") && document.querySelector("#conn").dataset.state === "live"`, waitFor)
	reqs := o.rec.streamRequests()
	if len(reqs) <= len(before) {
		t.Fatalf("no new stream request after the stream was cut")
	}
	if got := reqs[len(before)].Header.Get("Last-Event-ID"); got != lastID {
		t.Errorf("the stream was resumed with Last-Event-ID %q, want %q", got, lastID)
	}
	var id string
	b.Eval(t, visibleRows+`[0].dataset.id`, &id)
	o.feed(o.progress(id, 4_560_000_000))
	b.Until(t, "waiting for a change after reconnecting", fmt.Sprintf(
		`document.querySelector('.vt-row[data-id=%q] .c-slots .main')?.textContent === "4.56G"`, id), waitFor)
}

func detailFromKeyboard(t *testing.T, b *browser.Browser) {
	t.Helper()
	b.Run(t, "focusing the search with /", chromedp.Evaluate(`document.activeElement.blur(); true`, new(bool)), chromedp.KeyEvent("/"))
	b.Until(t, "waiting for the search to take focus", `document.activeElement.id === "f-q"`, waitFor)
	b.Run(t, "moving into the list", chromedp.KeyEvent(kb.ArrowDown))
	b.Until(t, "waiting for a focused row", `document.activeElement.classList.contains("vt-row")`, waitFor)
	var id string
	b.Eval(t, `document.activeElement.dataset.id`, &id)
	b.Run(t, "opening the detail", chromedp.KeyEvent(kb.Enter))
	key := keyOf(id)
	b.Until(t, "waiting for the detail panel", fmt.Sprintf(`!document.querySelector("#detail").hidden && document.querySelector("#d-title").textContent === %q`, key.JobID), waitFor)
	b.Until(t, "waiting for the timeline", `document.querySelectorAll("#detail .timeline li").length > 0`, waitFor)
	var cmd string
	b.Eval(t, `document.querySelector("#detail .cmd-text").textContent`, &cmd)
	if want := fmt.Sprintf("bq --project_id=%s --location=%s cancel %s", key.Project, key.Location, key.JobID); cmd != want {
		t.Errorf("cancel command = %q, want %q", cmd, want)
	}
	b.Screenshot(t, "detail")
	b.Run(t, "closing the detail", chromedp.KeyEvent(kb.Escape))
	b.Until(t, "waiting for the panel to close and focus to return", fmt.Sprintf(`document.querySelector("#detail").hidden && document.activeElement.dataset.id === %q`, id), waitFor)
}

func historyRestoresState(t *testing.T, b *browser.Browser, o *org) {
	t.Helper()
	// Entries, newest first: detail closed, detail open, search, the first load.
	b.Eval(t, `history.back(); true`, new(bool))
	b.Until(t, "waiting for back to reopen the detail", `!document.querySelector("#detail").hidden && location.search.includes("job=")`, waitFor)
	b.Eval(t, `history.go(-2); true`, new(bool))
	b.Until(t, "waiting for back to clear the search", `document.querySelector("#f-q").value === "" && document.querySelector("#detail").hidden`, waitFor)
	b.Until(t, "waiting for the whole list", countIs(o.proj.Len()), waitFor)
	reqs := o.rec.listQueries()
	if got := reqs[len(reqs)-1].Get("q"); got != "" {
		t.Errorf("after going back, the list was requested with q=%q, want none", got)
	}
}

// TestPageLayouts renders the page on a narrow phone screen and in the dark
// scheme, checks that the narrow list drops its header for stacked rows, and
// saves screenshots of both.
func TestPageLayouts(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, 60)
	b := startBrowser(t)

	b.Run(t, "loading on a phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(o.URL()))
	b.Until(t, "waiting for rows", visibleRows+`.length > 3`, waitFor)
	b.Until(t, "waiting for the narrow layout", `getComputedStyle(document.querySelector(".vt-head")).display === "none"`, waitFor)
	var overflow bool
	b.Eval(t, `document.documentElement.scrollWidth > document.documentElement.clientWidth`, &overflow)
	if overflow {
		var wide []string
		b.Eval(t, `[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > 391).map(e => e.tagName + "." + e.className + " " + e.getBoundingClientRect().right)`, &wide)
		t.Errorf("the page scrolls sideways on a 390 px screen; too wide: %v", wide)
	}
	b.Screenshot(t, "narrow")

	b.Run(t, "switching to the dark scheme",
		chromedp.EmulateViewport(1280, 800),
		emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}),
		chromedp.Navigate(o.URL()+"?sort=-slot_ms"))
	b.Until(t, "waiting for rows", visibleRows+`.length > 10`, waitFor)
	b.Until(t, "waiting for the sort", `document.querySelector('[data-sort="slot_ms"]').getAttribute("aria-sort") === "descending"`, waitFor)
	b.Screenshot(t, "dark")
}
