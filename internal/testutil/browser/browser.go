// Package browser starts headless Chromium for the tests that drive the web
// page, one browser per test: the binary named by BQOBSERVER_CHROMIUM (the
// test skips without it, or fails under envtest.RequireAll), headless and
// without the sandbox, with a temporary profile that is removed when the
// test ends. It collects the page's uncaught exceptions and console errors,
// and a test that ends with some it did not take fails. Screenshots go to
// the test's artifact directory (kept with go test -artifacts).
package browser

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/bqobserver/bqobserver/internal/testutil/envtest"
)

// Env names the variable holding the Chromium binary.
const Env = "BQOBSERVER_CHROMIUM"

// lifetime bounds a browser's whole life, so that a hung Chromium fails
// its test rather than the test binary's timeout.
const lifetime = 5 * time.Minute

// poll is how often Until evaluates its condition.
const poll = 50 * time.Millisecond

// flags are Chromium's command-line switches: headless, without the
// sandbox (which needs privileges a CI container lacks), and quiet.
var flags = []string{"headless", "no-sandbox", "disable-gpu", "disable-quic", "no-first-run",
	"disable-background-networking", "disable-component-update", "disable-sync"}

// Browser is a headless Chromium with one tab.
type Browser struct {
	// Profile is the browser's temporary profile directory.
	Profile string
	// Describe is a JavaScript expression whose value Until reports when a
	// condition does not hold in time, to show what the page shows.
	Describe string

	ctx      context.Context
	mu       sync.Mutex
	errors   []string
	captures int
}

// Start starts Chromium for t. When t ends it stops the browser, removes
// the profile, and fails t if the page reported errors it did not take.
func Start(t testing.TB) *Browser {
	t.Helper()
	path := Binary(t)
	profile, err := os.MkdirTemp("", "bqobserver-chromium-")
	if err != nil {
		t.Fatalf("creating a browser profile: %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.UserDataDir(profile)}
	for _, f := range flags {
		opts = append(opts, chromedp.Flag(f, true))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, lifetime)
	b := &Browser{Profile: profile, ctx: ctx}
	t.Cleanup(func() {
		cancelTime()
		cancelTab()
		cancelAlloc() // waits for the browser to exit
		removeProfile(t, profile)
		if errs := b.TakeErrors(); len(errs) > 0 {
			t.Errorf("the page reported script or console errors:\n%s", strings.Join(errs, "\n"))
		}
	})
	chromedp.ListenTarget(ctx, b.listen)
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return b
}

// Binary returns the Chromium binary named by Env, or skips t without it
// (fails it under envtest.RequireAll).
func Binary(t testing.TB) string {
	t.Helper()
	return envtest.Getenv(t, Env, "a Chromium binary (for example /usr/bin/chromium)")
}

// removeProfile deletes the profile. Chromium's helper processes may still
// be writing to it for a moment after the browser exits.
func removeProfile(t testing.TB, dir string) {
	var err error
	for range 20 {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("removing the browser profile: %v", err)
}

// listen records uncaught exceptions and console errors of the page.
func (b *Browser) listen(ev any) {
	var msg string
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg = "uncaught exception: " + exception(e.ExceptionDetails)
	case *runtime.EventConsoleAPICalled:
		if e.Type != runtime.APITypeError {
			return
		}
		msg = "console.error:" + consoleArgs(e.Args)
	default:
		return
	}
	b.mu.Lock()
	b.errors = append(b.errors, msg)
	b.mu.Unlock()
}

// exception renders an exception with its stack when the page gave one.
func exception(d *runtime.ExceptionDetails) string {
	if d.Exception != nil && d.Exception.Description != "" {
		return d.Exception.Description
	}
	return d.Error()
}

// consoleArgs renders console arguments: primitives by value, objects by
// their description.
func consoleArgs(args []*runtime.RemoteObject) string {
	var s strings.Builder
	for _, a := range args {
		s.WriteByte(' ')
		if len(a.Value) > 0 {
			s.Write(a.Value)
		} else {
			s.WriteString(a.Description)
		}
	}
	return s.String()
}

// TakeErrors returns the errors the page reported since the last call, and
// forgets them.
func (b *Browser) TakeErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	errs := b.errors
	b.errors = nil
	return errs
}

// Run performs actions, failing t with what was being done.
func (b *Browser) Run(t testing.TB, doing string, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		t.Fatalf("%s: %v", doing, err)
	}
}

// Eval evaluates a JavaScript expression into res.
func (b *Browser) Eval(t testing.TB, expr string, res any) {
	t.Helper()
	b.Run(t, "evaluating "+expr, chromedp.Evaluate(expr, res))
}

// Until waits up to within for a JavaScript expression to become true. If
// it does not, it saves a screenshot and fails t, reporting Describe.
func (b *Browser) Until(t testing.TB, doing, expr string, within time.Duration) {
	t.Helper()
	var ok bool
	err := chromedp.Run(b.ctx, chromedp.Poll(expr, &ok, chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(poll)))
	if err == nil {
		return
	}
	var shows string
	if b.Describe != "" {
		var v any
		if chromedp.Run(b.ctx, chromedp.Evaluate(b.Describe, &v)) == nil {
			shows = fmt.Sprintf("; the page shows %v", v)
		}
	}
	b.mu.Lock()
	b.captures++
	name := fmt.Sprintf("failed-wait-%d", b.captures)
	b.mu.Unlock()
	if path, serr := b.save(t, name); serr == nil {
		shows += "; screenshot " + path
	}
	t.Fatalf("%s: %s did not hold within %s (%v)%s", doing, expr, within, err, shows)
}

// Screenshot saves the viewport as name.png among t's artifacts.
func (b *Browser) Screenshot(t testing.TB, name string) {
	t.Helper()
	path, err := b.save(t, name)
	if err != nil {
		t.Fatalf("saving screenshot %s: %v", name, err)
	}
	t.Logf("screenshot: %s", path)
}

func (b *Browser) save(t testing.TB, name string) (string, error) {
	var png []byte
	if err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot(&png)); err != nil {
		return "", err
	}
	path := filepath.Join(t.ArtifactDir(), name+".png")
	return path, os.WriteFile(path, png, 0o644)
}
