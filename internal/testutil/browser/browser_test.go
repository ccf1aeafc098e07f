package browser

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/internal/testutil/tbtest"
)

// page serves a document whose script throws once and logs a console error
// when asked to, and counts clicks otherwise.
func page(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		script := `window.clicks = 0;`
		if r.URL.Query().Has("fail") {
			script += `console.error("broken", 42); setTimeout(() => { throw new Error("boom"); });`
		}
		w.Write([]byte(`<!doctype html><title>t</title><p id="n">ready</p><script>` + script + `</script>`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestBrowser(t *testing.T) {
	Binary(t)
	base := page(t)
	var profile string
	t.Run("page", func(t *testing.T) {
		b := Start(t)
		profile = b.Profile
		if _, err := os.Stat(profile); err != nil {
			t.Fatalf("the profile does not exist while the browser runs: %v", err)
		}
		b.Run(t, "loading", chromedp.EmulateViewport(320, 200), chromedp.Navigate(base+"/?fail"))
		b.Until(t, "waiting for the exception", `true`, time.Second)
		var text string
		b.Eval(t, `document.querySelector("#n").textContent`, &text)
		if text != "ready" {
			t.Errorf("#n holds %q, want ready", text)
		}
		b.Screenshot(t, "page")
		png, err := os.ReadFile(filepath.Join(t.ArtifactDir(), "page.png"))
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Errorf("the screenshot is not a PNG among the artifacts: %v", err)
		}
		var errs []string
		deadline := time.Now().Add(5 * time.Second)
		for len(errs) < 2 && time.Now().Before(deadline) {
			errs = append(errs, b.TakeErrors()...)
			time.Sleep(20 * time.Millisecond)
		}
		want := []string{`console.error: "broken" 42`, "uncaught exception: Error: boom\n    at " + base}
		if len(errs) != 2 || errs[0] != want[0] || !strings.HasPrefix(errs[1], want[1]) {
			t.Errorf("collected errors %q, want %q and one starting %q", errs, want[0], want[1])
		}
	})
	if _, err := os.Stat(profile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the profile %s is left after the test: %v", profile, err)
	}
}

// TestUntakenErrorsFail checks that a test whose page reported errors it
// did not take fails, and that a condition that never holds fails the wait.
func TestUntakenErrorsFail(t *testing.T) {
	Binary(t)
	base := page(t)
	got := tbtest.Run(t, func(tb testing.TB) {
		b := Start(tb)
		b.Describe = `document.title`
		b.Run(tb, "loading", chromedp.Navigate(base+"/?fail"))
		b.Until(tb, "waiting for a click", `window.clicks > 0`, 300*time.Millisecond)
	})
	if !strings.HasPrefix(got.Fatal, "waiting for a click: window.clicks > 0 did not hold within 300ms") ||
		!strings.Contains(got.Fatal, "the page shows t; screenshot ") {
		t.Errorf("the failed wait reported %q", got.Fatal)
	}
	if diff := cmp.Diff(len(got.Errors), 1); diff != "" || !strings.HasPrefix(got.Errors[0], "the page reported script or console errors:\n") {
		t.Errorf("errors reported at the end %q, want one about the page's errors", got.Errors)
	}
}
