package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/bqobserver/bqobserver/events"
)

// chromiumEnv names the variable holding the Chromium binary the browser
// tests drive; they skip when it is unset.
const chromiumEnv = "BQOBSERVER_CHROMIUM"

// waitFor bounds every wait for the page to reach a state.
const waitFor = 5 * time.Second

// browser is a headless Chromium tab and the script errors it reported.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

// startBrowser starts Chromium with a fresh profile; it is stopped when the
// test ends.
func startBrowser(t testing.TB) *browser {
	t.Helper()
	path := os.Getenv(chromiumEnv)
	if path == "" {
		t.Skipf("browser test skipped: set %s to a Chromium binary (for example /usr/bin/chromium) to run it", chromiumEnv)
	}
	profile, err := os.MkdirTemp("", "bqobserver-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.UserDataDir(profile)}
	for _, f := range []string{"headless", "no-sandbox", "disable-gpu", "disable-quic", "no-first-run",
		"disable-background-networking", "disable-component-update", "disable-sync"} {
		opts = append(opts, chromedp.Flag(f, true))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTime()
		cancelTab()
		cancelAlloc()
		removeProfile(t, profile)
	})
	b := &browser{ctx: ctx}
	chromedp.ListenTarget(ctx, b.listen)
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return b
}

// removeProfile deletes the browser profile. Chromium's helper processes may
// still be writing to it for a moment after the browser exits.
func removeProfile(t testing.TB, dir string) {
	var err error
	for range 20 {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("removing browser profile: %v", err)
}

// listen records uncaught exceptions and console errors of the page.
func (b *browser) listen(ev any) {
	var msg string
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg = e.ExceptionDetails.Error()
	case *runtime.EventConsoleAPICalled:
		if e.Type != runtime.APITypeError {
			return
		}
		for _, a := range e.Args {
			msg += string(a.Value) + a.Description + " "
		}
	default:
		return
	}
	b.mu.Lock()
	b.errors = append(b.errors, msg)
	b.mu.Unlock()
}

func (b *browser) scriptErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// run performs actions, failing the test with what was being done.
func (b *browser) run(t testing.TB, doing string, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		t.Fatalf("%s: %v", doing, err)
	}
}

// until waits for a JavaScript expression to become true.
func (b *browser) until(t testing.TB, doing, expr string) {
	t.Helper()
	var ok bool
	err := chromedp.Run(b.ctx, chromedp.Poll(expr, &ok, chromedp.WithPollingTimeout(waitFor), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		var state string
		chromedp.Run(b.ctx, chromedp.Evaluate(`document.querySelector("#count")?.textContent + " | " + location.search`, &state))
		t.Fatalf("%s: %s did not hold within %s (%v); page shows %q", doing, expr, waitFor, err, state)
	}
}

func (b *browser) eval(t testing.TB, expr string, res any) {
	t.Helper()
	b.run(t, "evaluating "+expr, chromedp.Evaluate(expr, res))
}

// screenshot saves the viewport as a PNG among the test's artifacts.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	var png []byte
	b.run(t, "taking screenshot "+name, chromedp.CaptureScreenshot(&png))
	path := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("saving screenshot: %v", err)
	}
	t.Logf("screenshot: %s", path)
}

// visibleRows are the table rows that are displayed, judged by the computed
// style rather than the hidden attribute, so that a style that overrides the
// attribute shows up as a failure.
const visibleRows = `[...document.querySelectorAll(".vt-body .vt-row")].filter(r => getComputedStyle(r).display !== "none")`

const visibleRowIDs = visibleRows + `.map(r => r.dataset.id)`

// TestPageInBrowser drives the page in headless Chromium against a fake API:
// jobs appear, the search narrows the list through the API, the stream's
// changes and removals reach the table in place, the detail panel works
// from the keyboard, and back and forward walk the URL state.
func TestPageInBrowser(t *testing.T) {
	now := time.Now()
	fake := newFakeAPI(seedJobs(240, now))
	srv := httptest.NewServer(fake.handler(Handler()))
	t.Cleanup(func() { fake.close(); srv.Close() })
	b := startBrowser(t)

	b.run(t, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(srv.URL+"/"))
	b.until(t, "waiting for rows", visibleRows+`.length > 10`)
	b.until(t, "waiting for the total", `document.querySelector("#count").textContent.startsWith("240 jobs")`)
	b.until(t, "waiting for the stream", `document.querySelector("#conn").dataset.state === "live"`)
	b.until(t, "waiting for the summary", `document.querySelectorAll("#by-project .chip").length > 0`)
	b.screenshot(t, "list")
	b.eval(t, `window.connStates = []; new MutationObserver(() => connStates.push(document.querySelector("#conn").dataset.state))
		.observe(document.querySelector("#conn"), {attributes: true}); true`, new(bool))

	term := "acme-ml-training"
	want := matchingIDs(fake, term)
	searchNarrows(t, b, fake, term, want)
	changeUpdatesInPlace(t, b, fake)
	removedJobLeaves(t, b, fake, len(want))
	newJobAppearsInOrder(t, b, fake, now)
	reconnects(t, b, fake)
	detailFromKeyboard(t, b)
	historyRestoresState(t, b, fake)

	if errs := b.scriptErrors(); len(errs) > 0 {
		t.Errorf("the page reported script errors:\n%s", strings.Join(errs, "\n"))
	}
}

func matchingIDs(f *fakeAPI, q string) map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := map[string]bool{}
	for id, j := range f.jobs {
		if matches(j, map[string][]string{"q": {q}}) {
			ids[id] = true
		}
	}
	return ids
}

func searchNarrows(t *testing.T, b *browser, fake *fakeAPI, term string, want map[string]bool) {
	t.Helper()
	if len(want) == 0 || len(want) >= 240 {
		t.Fatalf("search term %q matches %d of 240 jobs; pick one that narrows", term, len(want))
	}
	b.run(t, "typing a search", chromedp.SendKeys("#f-q", term, chromedp.ByQuery))
	b.until(t, "waiting for the narrowed list", fmt.Sprintf(`document.querySelector("#count").textContent.startsWith("%d jobs")`, len(want)))
	reqs := fake.listRequests()
	if got := reqs[len(reqs)-1].Get("q"); got != term {
		t.Errorf("last list request has q=%q, want %q", got, term)
	}
	var ids []string
	b.eval(t, visibleRowIDs, &ids)
	for _, id := range ids {
		if !want[id] {
			t.Errorf("row %s is shown but does not match %q", id, term)
		}
	}
	var search string
	b.eval(t, `location.search`, &search)
	if !strings.Contains(search, "q="+term) {
		t.Errorf("URL query %q does not hold the search", search)
	}
}

func changeUpdatesInPlace(t *testing.T, b *browser, fake *fakeAPI) {
	t.Helper()
	var id string
	b.eval(t, visibleRows+`[0].dataset.id`, &id)
	b.eval(t, `window.rowBefore = `+visibleRows+`[0]; true`, new(bool))
	fake.mu.Lock()
	j := *fake.jobs[id]
	fake.mu.Unlock()
	j.SlotMs = events.Int64(1_230_000_000_000)
	j.LastSeen = time.Now()
	fake.update(&j)
	b.until(t, "waiting for the changed slot-ms", fmt.Sprintf(
		`document.querySelector('.vt-row[data-id=%q] .c-slots .main')?.textContent === "1.23T"`, id))
	var same bool
	b.eval(t, fmt.Sprintf(`window.rowBefore === document.querySelector('.vt-row[data-id=%q]')`, id), &same)
	if !same {
		t.Errorf("the changed job's row was replaced, want it updated in place")
	}
}

func removedJobLeaves(t *testing.T, b *browser, fake *fakeAPI, matching int) {
	t.Helper()
	var ids []string
	b.eval(t, visibleRowIDs, &ids)
	gone := ids[1]
	fake.remove(gone)
	b.until(t, "waiting for the removed job to leave", fmt.Sprintf(`!%s.some(r => r.dataset.id === %q)`, visibleRows, gone))
	b.until(t, "waiting for the count to drop", fmt.Sprintf(`document.querySelector("#count").textContent.startsWith("%d jobs")`, matching-1))
}

func newJobAppearsInOrder(t *testing.T, b *browser, fake *fakeAPI, now time.Time) {
	t.Helper()
	j := &fakeJob{}
	j.Key = events.JobKey{Project: "acme-ml-training", Location: "US", JobID: "bquxjob_new_longest"}
	j.State, j.JobType, j.Principal = events.StateRunning, events.JobTypeQuery, "erin@acme.example"
	j.CreateTime, j.StartTime, j.LastSeen = now.Add(-5*time.Hour), now.Add(-5*time.Hour), now
	j.Query = "SELECT 1"
	fake.update(j)
	// The list is sorted longest-running first: the new job goes where the
	// server would put it, near the top.
	want := serverPosition(fake, j.id(), url.Values{"q": {"acme-ml-training"}, "sort": {"-running"}})
	if want < 0 || want > 10 {
		t.Fatalf("the new job sorts at %d; want a position near the top so the test can see it", want)
	}
	b.until(t, "waiting for the new job in its place", fmt.Sprintf(
		`document.querySelector('.vt-body .vt-row[data-id=%q]')?.getAttribute("aria-rowindex") === "%d"`, j.id(), want+2))
}

// serverPosition is the index of a job in the fake's list for a query, or -1.
func serverPosition(f *fakeAPI, id string, q url.Values) int {
	f.mu.Lock()
	var jobs []*fakeJob
	for _, j := range f.jobs {
		if matches(j, q) {
			jobs = append(jobs, j)
		}
	}
	f.mu.Unlock()
	sortJobs(jobs, q.Get("sort"))
	return slices.IndexFunc(jobs, func(j *fakeJob) bool { return j.id() == id })
}

// reconnects cuts the stream and checks that the indicator says so, that
// the browser resumes from the last event it saw, and that changes flow again.
func reconnects(t *testing.T, b *browser, fake *fakeAPI) {
	t.Helper()
	fake.mu.Lock()
	lastID := strconv.Itoa(fake.seq)
	fake.mu.Unlock()
	before := len(fake.streamRequests())
	fake.dropStreams()
	b.until(t, "waiting for the indicator to show the reconnection",
		`connStates.includes("reconnecting") && document.querySelector("#conn").dataset.state === "live"`)
	reqs := fake.streamRequests()
	if len(reqs) <= before {
		t.Fatalf("no new stream request after the stream was cut")
	}
	if got := reqs[before].Get("Last-Event-ID"); got != lastID {
		t.Errorf("the stream was resumed with Last-Event-ID %q, want %q", got, lastID)
	}
	var id string
	b.eval(t, visibleRows+`[0].dataset.id`, &id)
	fake.mu.Lock()
	j := *fake.jobs[id]
	fake.mu.Unlock()
	j.SlotMs, j.LastSeen = events.Int64(4_560_000_000), time.Now()
	fake.update(&j)
	b.until(t, "waiting for a change after reconnecting", fmt.Sprintf(
		`document.querySelector('.vt-row[data-id=%q] .c-slots .main')?.textContent === "4.56G"`, id))
}

func detailFromKeyboard(t *testing.T, b *browser) {
	t.Helper()
	b.run(t, "focusing the search with /", chromedp.Evaluate(`document.activeElement.blur(); true`, new(bool)), chromedp.KeyEvent("/"))
	b.until(t, "waiting for the search to take focus", `document.activeElement.id === "f-q"`)
	b.run(t, "moving into the list", chromedp.KeyEvent(kb.ArrowDown))
	b.until(t, "waiting for a focused row", `document.activeElement.classList.contains("vt-row")`)
	var id string
	b.eval(t, `document.activeElement.dataset.id`, &id)
	b.run(t, "opening the detail", chromedp.KeyEvent(kb.Enter))
	key := strings.SplitN(id, "/", 3)
	b.until(t, "waiting for the detail panel", fmt.Sprintf(`!document.querySelector("#detail").hidden && document.querySelector("#d-title").textContent === %q`, key[2]))
	b.until(t, "waiting for the timeline", `document.querySelectorAll("#detail .timeline li").length > 0`)
	var cmd string
	b.eval(t, `document.querySelector("#detail .cmd-text").textContent`, &cmd)
	if want := fmt.Sprintf("bq --project_id=%s --location=%s cancel %s", key[0], key[1], key[2]); cmd != want {
		t.Errorf("cancel command = %q, want %q", cmd, want)
	}
	b.screenshot(t, "detail")
	b.run(t, "closing the detail", chromedp.KeyEvent(kb.Escape))
	b.until(t, "waiting for the panel to close and focus to return", fmt.Sprintf(`document.querySelector("#detail").hidden && document.activeElement.dataset.id === %q`, id))
}

func historyRestoresState(t *testing.T, b *browser, fake *fakeAPI) {
	t.Helper()
	// Entries, newest first: detail closed, detail open, search, the first load.
	b.eval(t, `history.back(); true`, new(bool))
	b.until(t, "waiting for back to reopen the detail", `!document.querySelector("#detail").hidden && location.search.includes("job=")`)
	b.eval(t, `history.go(-2); true`, new(bool))
	b.until(t, "waiting for back to clear the search", `document.querySelector("#f-q").value === "" && document.querySelector("#detail").hidden`)
	fake.mu.Lock()
	total := len(fake.jobs)
	fake.mu.Unlock()
	b.until(t, "waiting for the whole list", fmt.Sprintf(`document.querySelector("#count").textContent.startsWith("%d jobs")`, total))
	reqs := fake.listRequests()
	if got := reqs[len(reqs)-1].Get("q"); got != "" {
		t.Errorf("after going back, the list was requested with q=%q, want none", got)
	}
}

// TestPageLayouts renders the page on a narrow phone screen and in the dark
// scheme, checks that the narrow list drops its header for stacked rows, and
// saves screenshots of both.
func TestPageLayouts(t *testing.T) {
	fake := newFakeAPI(seedJobs(60, time.Now()))
	srv := httptest.NewServer(fake.handler(Handler()))
	t.Cleanup(func() { fake.close(); srv.Close() })
	b := startBrowser(t)

	b.run(t, "loading on a phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(srv.URL+"/"))
	b.until(t, "waiting for rows", visibleRows+`.length > 3`)
	b.until(t, "waiting for the narrow layout", `getComputedStyle(document.querySelector(".vt-head")).display === "none"`)
	var overflow bool
	b.eval(t, `document.documentElement.scrollWidth > document.documentElement.clientWidth`, &overflow)
	if overflow {
		var wide []string
		b.eval(t, `[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > 391).map(e => e.tagName + "." + e.className + " " + e.getBoundingClientRect().right)`, &wide)
		t.Errorf("the page scrolls sideways on a 390 px screen; too wide: %v", wide)
	}
	b.screenshot(t, "narrow")

	b.run(t, "switching to the dark scheme",
		chromedp.EmulateViewport(1280, 800),
		emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}),
		chromedp.Navigate(srv.URL+"/?sort=-slot_ms"))
	b.until(t, "waiting for rows", visibleRows+`.length > 10`)
	b.until(t, "waiting for the sort", `document.querySelector('[data-sort="slot_ms"]').getAttribute("aria-sort") === "descending"`)
	b.screenshot(t, "dark")
	if errs := b.scriptErrors(); len(errs) > 0 {
		t.Errorf("the page reported script errors:\n%s", strings.Join(errs, "\n"))
	}
}
