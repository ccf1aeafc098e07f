package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/browser"
)

// loadedRows is how many jobs the running list has loaded, from the height
// of its body.
const loadedRows = `Math.round(document.querySelector("#grid .vt-body").offsetHeight /
	parseFloat(getComputedStyle(document.querySelector("#grid")).getPropertyValue("--row-h")))`

// isLive is the condition that the page says its list is live.
const isLive = `document.querySelector("#conn").dataset.state === "live"`

// intercept puts h in front of the org's API: h gets every API request the
// page makes, and the API to pass it on to. Call it before the page loads.
func (o *org) intercept(h func(w http.ResponseWriter, r *http.Request, api http.Handler)) {
	api := o.rec.next
	o.rec.next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(w, r, api) })
}

// gate is a point where a request handler waits until the test opens it.
// It opens by itself when the test ends or the request is cancelled, so
// that the server can stop.
type gate struct {
	open chan struct{}
	done chan struct{}
}

func newGate(t *testing.T) *gate {
	g := &gate{open: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { close(g.done) })
	return g
}

// wait blocks until the gate opens, the test ends or ctx is done.
func (g *gate) wait(ctx context.Context) {
	select {
	case <-g.open:
	case <-g.done:
	case <-ctx.Done():
	}
}

func (g *gate) release() { close(g.open) }

// beforeScripts runs src in every document the tab loads, before the
// page's own scripts.
func beforeScripts(src string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(src).Do(ctx)
		return err
	})
}

// TestNextPageLeavesOutJobsThatLeft: a job that finishes after the next
// page was read, but before that page reaches the page, is not listed by
// it (it would stay listed as running for good) and stays counted out.
func TestNextPageLeavesOutJobsThatLeft(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, 800)
	read := make(chan struct{}, 1)
	deliver := newGate(t)
	o.intercept(func(w http.ResponseWriter, r *http.Request, api http.Handler) {
		if r.URL.Path != "/api/v1/jobs" || r.URL.Query().Get("cursor") == "" {
			api.ServeHTTP(w, r)
			return
		}
		rr := httptest.NewRecorder()
		api.ServeHTTP(rr, r) // the page is read now...
		select {
		case read <- struct{}{}:
		default:
		}
		deliver.wait(r.Context()) // ...and delivered later
		for k, v := range rr.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rr.Code)
		_, _ = w.Write(rr.Body.Bytes())
	})
	b := startBrowser(t)
	b.Run(t, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(o.URL()))
	b.Until(t, "waiting for the stream", isLive, waitFor)
	b.Until(t, "waiting for the total", countIs(800), waitFor)
	b.Eval(t, `(g => { g.scrollTop = g.scrollHeight; return true })(document.querySelector("#grid"))`, new(bool))
	select {
	case <-read:
	case <-time.After(waitFor):
		t.Fatal("the page did not ask for the next page")
	}
	gone := o.listed(url.Values{"sort": {"-running"}})[650] // on the second page
	o.feed(o.finish(gone))
	b.Until(t, "waiting for the finished job to be counted out", countIs(799), waitFor)
	deliver.release()
	b.Until(t, "waiting for the next page without the finished job",
		loadedRows+` === 799 && document.querySelector("#count").textContent === "799 jobs running or queued"`, waitFor)
}

// TestNextPageCountsChangesOnce: a job that finishes before the next page
// is read, but whose removal reaches the page only after that page, is
// counted out once: the page's total already left it out. (The job is on a
// page not loaded yet, so that only the count can tell.)
func TestNextPageCountsChangesOnce(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, 1200)
	var holding atomic.Bool
	held := newGate(t)
	o.intercept(func(w http.ResponseWriter, r *http.Request, api http.Handler) {
		if r.URL.Path == "/api/v1/stream" {
			w = &heldWriter{ResponseWriter: w, holding: &holding, gate: held, ctx: r.Context()}
		}
		api.ServeHTTP(w, r)
	})
	b := startBrowser(t)
	b.Run(t, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(o.URL()))
	b.Until(t, "waiting for the stream", isLive, waitFor)
	b.Until(t, "waiting for the total", countIs(1200), waitFor)
	holding.Store(true)
	_, _, next := o.page("/api/v1/jobs", url.Values{"sort": {"-running"}, "limit": {"1000"}})
	after, _, _ := o.page("/api/v1/jobs", url.Values{"sort": {"-running"}, "limit": {"1000"}, "cursor": {next}})
	gone := after[100] // on the page's third page
	o.feed(o.finish(gone))
	b.Eval(t, `(g => { g.scrollTop = g.scrollHeight; return true })(document.querySelector("#grid"))`, new(bool))
	b.Until(t, "waiting for the next page, read after the job finished", loadedRows+` === 1000 && `+countIs(1199), waitFor)
	held.release()
	var first string
	b.Eval(t, visibleRows+`[0].dataset.id`, &first)
	o.feed(o.progress(first, 321_000_000_000))
	// The marker comes after the removal, so once it is drawn so is that.
	b.Until(t, "waiting for the marker", fmt.Sprintf(
		`document.querySelector('.vt-row[data-id=%q] .c-slots .main')?.textContent === "321G"`, first), waitFor)
	var count string
	b.Eval(t, `document.querySelector("#count").textContent`, &count)
	if count != "1,199 jobs running or queued" {
		t.Errorf("after the removal the next page reflected arrived, the count is %q, want 1,199", count)
	}
}

// heldWriter holds what a stream writes while holding is set, until its
// gate opens.
type heldWriter struct {
	http.ResponseWriter
	holding *atomic.Bool
	gate    *gate
	ctx     context.Context
}

func (w *heldWriter) Write(p []byte) (int, error) {
	if w.holding.Load() {
		w.gate.wait(w.ctx)
	}
	return w.ResponseWriter.Write(p)
}

func (w *heldWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestShortJobsKeepCount: a job that starts and finishes between two
// drawings (its added and removed events coalesced) was never counted in,
// so it is not counted out either.
func TestShortJobsKeepCount(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, 600)
	b := startBrowser(t)
	b.Run(t, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(o.URL()))
	b.Until(t, "waiting for the stream", isLive, waitFor)
	b.Until(t, "waiting for the total", countIs(600), waitFor)
	evs := shortJobs(o, 40)
	var first string
	b.Eval(t, visibleRows+`[0].dataset.id`, &first)
	o.feed(append(evs, o.progress(first, 321_000_000_000))...)
	// The marker comes after the short jobs, so once it is drawn so are they.
	b.Until(t, "waiting for the marker", fmt.Sprintf(
		`document.querySelector('.vt-row[data-id=%q] .c-slots .main')?.textContent === "321G"`, first), waitFor)
	var count string
	b.Eval(t, `document.querySelector("#count").textContent`, &count)
	if count != "600 jobs running or queued" {
		t.Errorf("after 40 jobs started and finished, the count is %q, want 600 (the API's total is %d)", count, len(o.listed(url.Values{})))
	}
}

// shortJobs returns the events of n jobs that start and finish at once.
func shortJobs(o *org, n int) []events.Event {
	var evs []events.Event
	for i := range n {
		key := events.JobKey{Project: "acme-etl", Location: "US", JobID: fmt.Sprintf("short_%02d", i)}
		at := o.now()
		evs = append(evs, o.event(events.KindInserted, key, at, events.StateRunning, events.Facts{
			Principal: "bob@acme.example", JobType: events.JobTypeQuery, CreateTime: at, StartTime: at, Query: "SELECT 1",
		}))
		end := o.now()
		evs = append(evs, o.event(events.KindCompleted, key, end, events.StateDone, events.Facts{EndTime: end}))
	}
	return evs
}

// TestChangesAppliedWithoutFrames: in a tab that draws no frames (a hidden
// one), the stream's changes are still applied, rather than piling up
// until a frame comes.
func TestChangesAppliedWithoutFrames(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, 60)
	b := startBrowser(t)
	b.Run(t, "stopping animation frames", beforeScripts(`window.requestAnimationFrame = () => 1; window.cancelAnimationFrame = () => {};`))
	b.Run(t, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(o.URL()))
	b.Until(t, "waiting for the stream", isLive, waitFor)
	b.Until(t, "waiting for the total", countIs(60), waitFor)
	ids := o.listed(url.Values{})
	o.feed(o.finish(ids[0]), o.finish(ids[1]))
	b.Until(t, "waiting for the finished jobs to be counted out", countIs(58), waitFor)
}

// TestStreamOpeningLate: when the stream opens later than the first page
// waits for it, the page is fetched without it; once the stream opens, the
// page is fetched again, since the changes made in between never arrive on
// the stream.
func TestStreamOpeningLate(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, 60)
	var streams atomic.Int32
	opens := newGate(t)
	o.intercept(func(w http.ResponseWriter, r *http.Request, api http.Handler) {
		if r.URL.Path == "/api/v1/stream" && streams.Add(1) == 1 {
			opens.wait(r.Context()) // a slow proxy, a cold start
		}
		api.ServeHTTP(w, r)
	})
	b := startBrowser(t)
	b.Run(t, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(o.URL()))
	b.Until(t, "waiting for the page without the stream", countIs(60)+` && !(`+isLive+`)`, waitFor)
	var gone string
	b.Eval(t, visibleRows+`[0].dataset.id`, &gone)
	o.feed(o.finish(gone)) // before the stream opens
	opens.release()
	b.Until(t, "waiting for the stream", isLive, waitFor)
	b.Until(t, "waiting for the finished job to leave", fmt.Sprintf(`!%s.some(r => r.dataset.id === %q) && %s`, visibleRows, gone, countIs(59)), waitFor)
}

// TestFirstPageFailureRetries: a first page that fails without Retry-After
// is fetched again by itself, after a wait; meanwhile the page does not say
// the list is live, and once a page is shown the list is live again.
func TestFirstPageFailureRetries(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, 60)
	var failing atomic.Bool
	failing.Store(true)
	o.intercept(func(w http.ResponseWriter, r *http.Request, api http.Handler) {
		if r.URL.Path == "/api/v1/jobs" && r.URL.Query().Get("cursor") == "" && failing.Load() {
			http.Error(w, "the list is unwell", http.StatusInternalServerError)
			return
		}
		api.ServeHTTP(w, r)
	})
	b := startBrowser(t)
	b.Run(t, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(o.URL()))
	b.Until(t, "waiting for the failure to show", `document.querySelector("#notice").textContent.includes("Retrying in")`, waitFor)
	b.Until(t, "waiting for the list to say it is not live", `document.querySelector("#conn").dataset.state === "stale"`, waitFor)
	ids := o.listed(url.Values{})
	o.feed(o.finish(ids[0])) // while no page is shown
	failing.Store(false)
	b.Until(t, "waiting for the retried page", countIs(59)+` && document.querySelector("#notice").hidden && `+isLive, 2*waitFor)
	o.feed(o.finish(ids[1]))
	b.Until(t, "waiting for a change after the retry", countIs(58), waitFor)
}

// TestNextPageFailureRetries: a next page that fails without Retry-After
// is fetched again by itself, after a wait, without the user scrolling
// again, and the failure's notice goes once it is.
func TestNextPageFailureRetries(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, 800)
	var failing atomic.Bool
	failing.Store(true)
	var failed atomic.Int32
	o.intercept(func(w http.ResponseWriter, r *http.Request, api http.Handler) {
		if r.URL.Path == "/api/v1/jobs" && r.URL.Query().Get("cursor") != "" && failing.Load() {
			failed.Add(1)
			http.Error(w, "the list is unwell", http.StatusInternalServerError)
			return
		}
		api.ServeHTTP(w, r)
	})
	b := startBrowser(t)
	b.Run(t, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(o.URL()))
	b.Until(t, "waiting for the stream", isLive, waitFor)
	b.Until(t, "waiting for the total", countIs(800), waitFor)
	var first int
	b.Eval(t, loadedRows, &first)
	b.Eval(t, `(g => { g.scrollTop = g.scrollHeight; return true })(document.querySelector("#grid"))`, new(bool))
	b.Until(t, "waiting for the failure to show", `document.querySelector("#notice").textContent.includes("Retrying in")`, waitFor)
	failing.Store(false)
	b.Until(t, "waiting for the retried page", fmt.Sprintf(`%s > %d && document.querySelector("#notice").hidden`, loadedRows, first), 2*waitFor)
	if failed.Load() == 0 {
		t.Error("no next page failed")
	}
}

// TestNoticeShowsBidiControls: an error that quotes what a request held
// (here a project name with a right-to-left override) shows its
// bidirectional controls spelled out, as every name on the page is, so that
// it cannot reorder the notice around it.
func TestNoticeShowsBidiControls(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, 10)
	o.intercept(func(w http.ResponseWriter, r *http.Request, api http.Handler) {
		if r.URL.Path != "/api/v1/jobs" {
			api.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"type":"about:blank","title":"Bad Request","status":400,"detail":"project: acme\u202e-etl is not listed"}`)
	})
	b := startBrowser(t)
	b.Run(t, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(o.URL()))
	b.Until(t, "waiting for the notice", `document.querySelector("#notice").textContent.includes("[U+202E]")`, waitFor)
	var raw bool
	b.Eval(t, `document.querySelector("#notice").textContent.includes("\u202e")`, &raw)
	if raw {
		t.Error("the notice shows a raw right-to-left override")
	}
}
