package web

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/browser"
)

// manyJobs is the organization size the page must stay responsive with.
const manyJobs = 10_000

// loadEverything scrolls the list to its end until every job is loaded.
func loadEverything(t testing.TB, b *browser.Browser, n int) {
	t.Helper()
	b.Until(t, fmt.Sprintf("scrolling through %d jobs", n), fmt.Sprintf(`((g) => {
		g.scrollTop = g.scrollHeight;
		const h = parseFloat(getComputedStyle(g).getPropertyValue("--row-h"));
		return g.querySelector(".vt-body").offsetHeight >= %d * h;
	})(document.querySelector("#grid"))`, n), time.Minute)
}

// TestManyJobs loads 10,000 running jobs into the page, scrolls through all
// of them and feeds a burst of changes, checking that only the rows in view
// are in the DOM and that the burst is drawn.
func TestManyJobs(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, manyJobs)
	b := startBrowser(t)
	b.Run(t, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(o.URL()))
	b.Until(t, "waiting for the stream", `document.querySelector("#conn").dataset.state === "live"`, waitFor)
	b.Until(t, "waiting for the total", countIs(manyJobs), waitFor)
	loadEverything(t, b, manyJobs)

	var rows int
	b.Eval(t, `document.querySelectorAll(".vt-body .vt-row").length`, &rows)
	if rows > 150 {
		t.Errorf("%d row elements in the DOM for %d jobs, want only those near the view", rows, manyJobs)
	}
	b.Until(t, "waiting for the last row", fmt.Sprintf(`!!document.querySelector('.vt-body .vt-row[aria-rowindex="%d"]:not([hidden])')`, manyJobs+1), waitFor)

	var last string
	b.Eval(t, fmt.Sprintf(`document.querySelector('.vt-body .vt-row[aria-rowindex="%d"]').dataset.id`, manyJobs+1), &last)
	o.feed(burst(o, 2000, last, 777_000_000_000)...)
	b.Until(t, "waiting for the burst to be drawn", fmt.Sprintf(
		`document.querySelector('.vt-row[data-id=%q] .c-slots .main')?.textContent === "777G"`, last), waitFor)
	b.Eval(t, `document.querySelectorAll(".vt-body .vt-row").length`, &rows)
	if rows > 150 {
		t.Errorf("%d row elements in the DOM after the burst, want only those near the view", rows)
	}
}

// burst returns n progress observations of the org's jobs, and a last one
// giving marker slot-ms to the job with id last.
func burst(o *org, n int, last string, marker int64) []events.Event {
	evs := make([]events.Event, 0, n+1)
	for i := range n {
		evs = append(evs, o.progress(o.seeded[(i*7919)%len(o.seeded)], int64(i)*1_000_003))
	}
	return append(evs, o.progress(last, marker))
}

// BenchmarkStreamBurst measures how long a burst of 1,000 changes takes from
// the projection to the page's drawing, with 10,000 jobs in the list, and how many of the
// browser's long tasks (over 50 ms, which a user feels as jank) the burst
// causes.
func BenchmarkStreamBurst(b *testing.B) {
	browser.Binary(b)
	o := newOrg(b, manyJobs)
	br := startBrowser(b)
	br.Run(b, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(o.URL()))
	br.Until(b, "waiting for the stream", `document.querySelector("#conn").dataset.state === "live"`, waitFor)
	loadEverything(b, br, manyJobs)
	br.Eval(b, `window.longTasks = 0; new PerformanceObserver((l) => { window.longTasks += l.getEntries().length }).observe({entryTypes: ["longtask"]}); true`, new(bool))
	var first string
	br.Eval(b, `document.querySelector('.vt-body .vt-row:not([hidden])').dataset.id`, &first)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// Markers of 100T to 899T are drawn as whole numbers, and each
		// differs from the one before.
		t := 100 + i%800
		b.StopTimer() // appending to the log is not the page's work
		evs := burst(o, 1000, first, int64(t)*1_000_000_000_000)
		o.append(evs)
		b.StartTimer()
		o.apply(evs)
		br.Until(b, "waiting for the burst", fmt.Sprintf(`document.querySelector('.vt-row[data-id=%q] .c-slots .main')?.textContent === "%dT"`, first, t), waitFor)
	}
	b.StopTimer()
	var long int
	br.Eval(b, `window.longTasks`, &long)
	b.ReportMetric(float64(long)/float64(b.N), "longtasks/op")
}
