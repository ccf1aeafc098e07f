package web

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/browser"
)

// finishJobs appends to the log (only: the history reads the log) the
// events of n jobs that ended between from and to before now, spread
// evenly, and returns their ids. About one in ten failed.
func (o *org) finishJobs(r *rand.Rand, n int, from, to time.Duration, now time.Time) []string {
	o.t.Helper()
	var evs []events.Event
	ids := make([]string, n)
	for i := range ids {
		job := seedJob(o, r, 10_000+i, now) // a queued or running job; it ends now
		key := job[0].Job
		ids[i] = idOf(key)
		end := now.Add(-from + time.Duration(i)*(from-to)/time.Duration(n))
		f := job[0].Facts
		f.CreateTime = end.Add(-time.Duration(1+r.IntN(600)) * time.Second)
		f.StartTime = f.CreateTime.Add(time.Duration(r.IntN(20)) * time.Second)
		inserted := o.event(events.KindInserted, key, f.CreateTime, events.StateRunning, f)
		done := o.event(events.KindCompleted, key, end, events.StateDone, events.Facts{EndTime: end,
			SlotMs: events.Int64(r.Int64N(5e9)), BytesProcessed: events.Int64(r.Int64N(5e12))})
		if r.IntN(10) == 0 {
			done.Error = &events.JobError{Code: "invalidQuery", Message: "Syntax error: Unexpected keyword WHERE"}
		}
		evs = append(evs, inserted, done)
	}
	o.append(evs)
	return ids
}

// history asks the API, not through the recorder, for the ids of the
// finished jobs matching q, in its order, following every page.
func (o *org) history(q url.Values) []string {
	o.t.Helper()
	q = maps.Clone(q)
	q.Set("limit", "1000")
	var all []string
	for {
		ids, _, next := o.page("/api/v1/history", q)
		all = append(all, ids...)
		if next == "" {
			return all
		}
		q.Set("cursor", next)
		q.Del("from")
	}
}

// historyRows are the displayed rows of the history's table.
const historyRows = `[...document.querySelectorAll("#history-grid .vt-body .vt-row")].filter(r => getComputedStyle(r).display !== "none")`

// TestHistoryInBrowser drives the History view in headless Chromium
// against the real API over a log fed with events: it lists the jobs that
// finished in the last hour (and not those before), pages through them as
// the table scrolls, narrows them by a search, sorts them, opens a job's
// detail with its timeline, links to BigQuery with the same filter, changes
// the range, and a reload of its URL restores all of it.
func TestHistoryInBrowser(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, 30)
	now := time.Now()
	r := rand.New(rand.NewPCG(11, 13))
	o.finishJobs(r, 1100, 55*time.Minute, 20*time.Minute, now)
	recent := o.finishJobs(r, 40, 10*time.Minute, 2*time.Minute, now)
	o.finishJobs(r, 30, 3*time.Hour, 2*time.Hour, now) // before the range
	all := o.history(url.Values{"from": {now.Add(-time.Hour).UTC().Format(time.RFC3339Nano)}})
	if len(all) != 1140 {
		t.Fatalf("the API lists %d jobs for the last hour, want 1140", len(all))
	}
	b := startBrowser(t)

	b.Run(t, "loading the history", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(o.URL()+"?view=history"))
	b.Until(t, "waiting for the finished jobs", countIs(1140), waitFor)
	b.Until(t, "waiting for rows", historyRows+`.length > 10`, waitFor)
	b.Until(t, "waiting for the history tab", `document.querySelector('[data-view-tab="history"]').getAttribute("aria-current") === "page" && document.querySelector("#grid").offsetParent === null`, waitFor)
	b.Screenshot(t, "history")
	showsInOrder(t, b, all)

	pagesAsItScrolls(t, b, o, all)

	const term = "acme-ml-training"
	searched := o.history(url.Values{"q": {term}, "from": {now.Add(-time.Hour).UTC().Format(time.RFC3339Nano)}})
	b.Run(t, "typing a search", chromedp.SendKeys("#f-q", term, chromedp.ByQuery))
	b.Until(t, "waiting for the narrowed history", countIs(len(searched)), waitFor)
	if hs := o.rec.historyQueries(); hs[len(hs)-1].Get("q") != term {
		t.Errorf("last history request has q=%q, want %q", hs[len(hs)-1].Get("q"), term)
	}
	showsInOrder(t, b, searched)
	linksToBigQuery(t, b, term)

	b.Run(t, "sorting by end time, oldest first", chromedp.Click(`#history-grid [data-sort="ended"] button`, chromedp.ByQuery))
	b.Until(t, "waiting for the sort", `location.search.includes("sort=ended") && document.querySelector('#history-grid [data-sort="ended"]').getAttribute("aria-sort") === "ascending"`, waitFor)
	oldest := o.history(url.Values{"q": {term}, "sort": {"ended"}, "from": {now.Add(-time.Hour).UTC().Format(time.RFC3339Nano)}})
	b.Until(t, "waiting for the oldest first", fmt.Sprintf(`%s[0]?.dataset.id === %q`, historyRows, oldest[0]), waitFor)

	id := opensDetailWithTimeline(t, b)
	restoresFromURL(t, b, term, id, len(searched))

	b.Run(t, "clearing the search", chromedp.Evaluate(`document.querySelector("#clear").click(); true`, new(bool)))
	b.Until(t, "waiting for the whole hour", countIs(1140), waitFor)
	b.Run(t, "choosing the last 15 minutes", chromedp.Evaluate(`(() => {
		const s = document.querySelector("#h-range"); s.value = "15m"; s.dispatchEvent(new Event("change", {bubbles: true})); return true;
	})()`, new(bool)))
	b.Until(t, "waiting for the last 15 minutes", countIs(len(recent))+` && location.search.includes("range=15m")`, waitFor)

	b.Run(t, "switching to the running list", chromedp.Click(`[data-view-tab="running"]`, chromedp.ByQuery))
	b.Until(t, "waiting for the running list", countIs(o.proj.Len())+` && !location.search.includes("view=") && document.querySelector("#history-grid").offsetParent === null`, waitFor)
	b.Eval(t, `history.back(); true`, new(bool))
	b.Until(t, "waiting for back to the history", countIs(len(recent))+` && location.search.includes("view=history")`, waitFor)
}

// showsInOrder checks that every displayed row of the history is the job
// the API lists at its place.
func showsInOrder(t *testing.T, b *browser.Browser, want []string) {
	t.Helper()
	var rows map[string]string
	b.Eval(t, `Object.fromEntries(`+historyRows+`.map(r => [r.getAttribute("aria-rowindex"), r.dataset.id]))`, &rows)
	if len(rows) == 0 {
		t.Fatal("no rows shown")
	}
	for index, id := range rows {
		var i int
		if _, err := fmt.Sscan(index, &i); err != nil || i < 2 || i-2 >= len(want) || want[i-2] != id {
			t.Errorf("row %s shows %s; the API lists %d jobs and not this one there", index, id, len(want))
		}
	}
}

// pagesAsItScrolls scrolls the history to its end: the page fetches the
// pages after the first with the cursor alone, and the last row is the
// API's last job.
func pagesAsItScrolls(t *testing.T, b *browser.Browser, o *org, all []string) {
	t.Helper()
	before := len(o.rec.historyQueries())
	// Each poll scrolls to the end of what is loaded, as a reader would.
	b.Until(t, "scrolling to the last row", fmt.Sprintf(`(() => {
		const g = document.querySelector("#history-grid"); g.scrollTop = g.scrollHeight;
		return %s.some(r => r.getAttribute("aria-rowindex") === "%d");
	})()`, historyRows, len(all)+1), 3*waitFor)
	showsInOrder(t, b, all)
	qs := o.rec.historyQueries()[before:]
	if len(qs) < 2 {
		t.Fatalf("%d history requests while scrolling 1140 jobs, want the pages after the first 500", len(qs))
	}
	for _, q := range qs {
		if q.Get("cursor") == "" || q.Has("from") || q.Has("to") {
			t.Errorf("a later page was asked for with %v, want the cursor alone to carry the range", q)
		}
	}
}

// linksToBigQuery checks the link to the history's jobs view and the SQL
// for the filters shown.
func linksToBigQuery(t *testing.T, b *browser.Browser, term string) {
	t.Helper()
	var link struct {
		Href   string `json:"href"`
		Hidden bool   `json:"hidden"`
		SQL    string `json:"sql"`
	}
	b.Eval(t, `(() => { const a = document.querySelector("#h-console");
		return {href: a.href, hidden: a.hidden, sql: document.querySelector("#h-sql").textContent}; })()`, &link)
	if want := "https://console.cloud.google.com/bigquery?d=bqobserver&p=acme-observer&page=table&project=acme-observer&t=jobs"; link.Href != want || link.Hidden {
		t.Errorf("BigQuery link %q (hidden %v), want %q", link.Href, link.Hidden, want)
	}
	for _, want := range []string{"FROM `acme-observer.bqobserver.jobs`", fmt.Sprintf("CONTAINS_SUBSTR(s, '%s')", term), "state = 'DONE'"} {
		if !strings.Contains(link.SQL, want) {
			t.Errorf("the SQL lacks %q:\n%s", want, link.SQL)
		}
	}
}

// opensDetailWithTimeline opens the first job from the keyboard and checks
// its detail: the finished job with its timeline from the log.
func opensDetailWithTimeline(t *testing.T, b *browser.Browser) string {
	t.Helper()
	var id string
	b.Eval(t, historyRows+`[0].dataset.id`, &id)
	b.Run(t, "focusing the first row", chromedp.Focus(fmt.Sprintf(`#history-grid .vt-row[data-id=%q]`, id), chromedp.ByQuery), chromedp.KeyEvent(kb.Enter))
	key := keyOf(id)
	b.Until(t, "waiting for the detail", fmt.Sprintf(`!document.querySelector("#detail").hidden && document.querySelector("#d-title").textContent === %q`, key.JobID), waitFor)
	b.Until(t, "waiting for the timeline", `[...document.querySelectorAll("#detail .timeline li")].map(li => li.querySelector("strong").textContent).join() === "Inserted,Completed"`, waitFor)
	b.Until(t, "waiting for the detail's end time", `[...document.querySelectorAll("#detail dt")].some(dt => dt.textContent === "Ended")`, waitFor)
	b.Screenshot(t, "history-detail")
	return id
}

// restoresFromURL reloads the page at its URL and checks that the view, the
// search, the sort and the open job come back.
func restoresFromURL(t *testing.T, b *browser.Browser, term, id string, n int) {
	t.Helper()
	var search string
	b.Eval(t, `location.search`, &search)
	for _, want := range []string{"view=history", "q=" + term, "sort=ended", "job="} {
		if !strings.Contains(search, want) {
			t.Errorf("URL query %q lacks %q", search, want)
		}
	}
	b.Run(t, "reloading the page", chromedp.Reload())
	b.Until(t, "waiting for the restored history", countIs(n)+fmt.Sprintf(` && document.querySelector("#f-q").value === %q`, term), waitFor)
	b.Until(t, "waiting for the restored detail", fmt.Sprintf(`!document.querySelector("#detail").hidden && document.querySelector("#d-title").textContent === %q`, keyOf(id).JobID), waitFor)
	b.Until(t, "waiting for the restored sort", `document.querySelector('#history-grid [data-sort="ended"]').getAttribute("aria-sort") === "ascending" && document.querySelector("#sort-select").value === "ended"`, waitFor)
	b.Run(t, "closing the detail", chromedp.KeyEvent(kb.Escape))
	b.Until(t, "waiting for the detail to close", `document.querySelector("#detail").hidden`, waitFor)
}

// TestHistoryNarrow renders the History view on a phone screen: the rows
// stack as the running list's do and nothing scrolls sideways.
func TestHistoryNarrow(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, 0)
	o.finishJobs(rand.New(rand.NewPCG(5, 7)), 60, 50*time.Minute, 5*time.Minute, time.Now())
	b := startBrowser(t)
	b.Run(t, "loading the history on a phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(o.URL()+"?view=history"))
	b.Until(t, "waiting for rows", historyRows+`.length > 3`, waitFor)
	b.Until(t, "waiting for the narrow layout", `getComputedStyle(document.querySelector("#history-grid .vt-head")).display === "none"`, waitFor)
	var wide []string
	b.Eval(t, `[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > 391).map(e => e.tagName + "." + e.className)`, &wide)
	if len(wide) > 0 {
		t.Errorf("the history scrolls sideways on a 390 px screen; too wide: %v", wide)
	}
	b.Screenshot(t, "history-narrow")
}

// TestHistoryLastDay opens the last 24 hours with the browser's clock ten
// minutes slow. The page asks for exactly 24 hours ending at the server's
// now: not at the browser's (the first answer sets the page's clock), and
// not leaving the server to end the range at its own now, which made it
// longer, by the request's latency, than the 24 hours a request may read.
func TestHistoryLastDay(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, 0)
	now := time.Now()
	r := rand.New(rand.NewPCG(3, 5))
	o.finishJobs(r, 30, 23*time.Hour, time.Hour, now)
	o.finishJobs(r, 5, 4*time.Minute, time.Minute, now) // within the browser's ten minutes
	b := startBrowser(t)
	b.Run(t, "slowing the browser's clock", beforeScripts(`{ const real = Date.now; Date.now = () => real() - 600_000; }`))
	b.Run(t, "loading the last 24 hours", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(o.URL()+"?view=history&range=24h"))
	b.Until(t, "waiting for the finished jobs", countIs(35), waitFor)
	hs := o.rec.historyQueries()
	q := hs[len(hs)-1]
	from, errFrom := time.Parse(time.RFC3339Nano, q.Get("from"))
	to, errTo := time.Parse(time.RFC3339Nano, q.Get("to"))
	if errFrom != nil || errTo != nil {
		t.Fatalf("the last history request has from=%q and to=%q, want both ends", q.Get("from"), q.Get("to"))
	}
	if to.Sub(from) != 24*time.Hour {
		t.Errorf("the last history request reads %s, want 24h", to.Sub(from))
	}
	if d := time.Since(to); d < 0 || d > waitFor {
		t.Errorf("the last history request ends %s before now, want it to end at the server's now", d)
	}
}
