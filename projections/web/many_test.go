package web

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bqobserver/bqobserver/events"
)

// manyJobs is the organization size the page must stay responsive with.
const manyJobs = 10_000

// loadEverything scrolls the list to its end until every job is loaded.
func loadEverything(t testing.TB, b *browser, n int) {
	t.Helper()
	var ok bool
	expr := fmt.Sprintf(`((g) => {
		g.scrollTop = g.scrollHeight;
		const h = parseFloat(getComputedStyle(g).getPropertyValue("--row-h"));
		return g.querySelector(".vt-body").offsetHeight >= %d * h;
	})(document.querySelector("#grid"))`, n)
	err := chromedp.Run(b.ctx, chromedp.Poll(expr, &ok, chromedp.WithPollingTimeout(60*time.Second), chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		t.Fatalf("scrolling through %d jobs: %v", n, err)
	}
}

// TestManyJobs loads 10,000 running jobs into the page, scrolls through all
// of them and applies a burst of stream changes, checking that only the rows
// in view are in the DOM and that the burst is drawn.
func TestManyJobs(t *testing.T) {
	now := time.Now()
	jobs := seedJobs(manyJobs, now)
	fake := newFakeAPI(jobs)
	srv := httptest.NewServer(fake.handler(Handler()))
	t.Cleanup(func() { fake.close(); srv.Close() })
	b := startBrowser(t)
	b.run(t, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(srv.URL+"/"))
	b.until(t, "waiting for the stream", `document.querySelector("#conn").dataset.state === "live"`)
	b.until(t, "waiting for the total", fmt.Sprintf(`document.querySelector("#count").textContent.startsWith("%s jobs")`, "10,000"))
	loadEverything(t, b, manyJobs)

	var rows int
	b.eval(t, `document.querySelectorAll(".vt-body .vt-row").length`, &rows)
	if rows > 150 {
		t.Errorf("%d row elements in the DOM for %d jobs, want only those near the view", rows, manyJobs)
	}
	b.until(t, "waiting for the last row", fmt.Sprintf(`!!document.querySelector('.vt-body .vt-row[aria-rowindex="%d"]:not([hidden])')`, manyJobs+1))

	var last string
	b.eval(t, fmt.Sprintf(`document.querySelector('.vt-body .vt-row[aria-rowindex="%d"]').dataset.id`, manyJobs+1), &last)
	burst(fake, jobs, 2000, last, 777_000_000_000)
	b.until(t, "waiting for the burst to be drawn", fmt.Sprintf(
		`document.querySelector('.vt-row[data-id=%q] .c-slots .main')?.textContent === "777G"`, last))
	b.eval(t, `document.querySelectorAll(".vt-body .vt-row").length`, &rows)
	if rows > 150 {
		t.Errorf("%d row elements in the DOM after the burst, want only those near the view", rows)
	}
}

// burst sends n changes to jobs of the fake, the last one giving marker
// slot-ms to the job with id last.
func burst(fake *fakeAPI, jobs []*fakeJob, n int, last string, marker int64) {
	for i := range n {
		j := *jobs[(i*7919)%len(jobs)]
		j.SlotMs = events.Int64(int64(i) * 1_000_003)
		j.LastSeen = time.Now()
		fake.update(&j)
	}
	fake.mu.Lock()
	j := *fake.jobs[last]
	fake.mu.Unlock()
	j.SlotMs = events.Int64(marker)
	j.LastSeen = time.Now()
	fake.update(&j)
}

// BenchmarkStreamBurst measures how long the page takes to draw a burst of
// 1,000 stream changes with 10,000 jobs in the list, and how many of the
// browser's long tasks (over 50 ms, which a user feels as jank) the burst
// causes.
func BenchmarkStreamBurst(b *testing.B) {
	now := time.Now()
	jobs := seedJobs(manyJobs, now)
	fake := newFakeAPI(jobs)
	srv := httptest.NewServer(fake.handler(Handler()))
	b.Cleanup(func() { fake.close(); srv.Close() })
	br := startBrowser(b)
	br.run(b, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(srv.URL+"/"))
	br.until(b, "waiting for the stream", `document.querySelector("#conn").dataset.state === "live"`)
	loadEverything(b, br, manyJobs)
	br.eval(b, `window.longTasks = 0; new PerformanceObserver((l) => { window.longTasks += l.getEntries().length }).observe({entryTypes: ["longtask"]}); true`, new(bool))
	var first string
	br.eval(b, `document.querySelector('.vt-body .vt-row:not([hidden])').dataset.id`, &first)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// Markers of 100T to 899T are drawn as whole numbers, and each
		// differs from the one before.
		t := 100 + i%800
		burst(fake, jobs, 1000, first, int64(t)*1_000_000_000_000)
		br.until(b, "waiting for the burst", fmt.Sprintf(`document.querySelector('.vt-row[data-id=%q] .c-slots .main')?.textContent === "%dT"`, first, t))
	}
	b.StopTimer()
	var long int
	br.eval(b, `window.longTasks`, &long)
	b.ReportMetric(float64(long)/float64(b.N), "longtasks/op")
}
