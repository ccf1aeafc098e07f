package web

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// response is what a test compares of an HTTP answer.
type response struct {
	Status       int
	ContentType  string
	CacheControl string
}

func get(t *testing.T, h http.Handler, method, target string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestHandlerServesPageAndAssets(t *testing.T) {
	h := Handler()
	v := Version()
	tests := []struct {
		name, method, target string
		want                 response
	}{
		{"page", "GET", "/", response{200, "text/html; charset=utf-8", "no-cache"}},
		{"page by name", "GET", "/index.html", response{200, "text/html; charset=utf-8", "no-cache"}},
		{"page with state in query", "GET", "/?q=orders&project=p1&sort=-slot_ms", response{200, "text/html; charset=utf-8", "no-cache"}},
		{"head of page", "HEAD", "/", response{200, "text/html; charset=utf-8", "no-cache"}},
		{"module", "GET", "/assets/" + v + "/app.js", response{200, "text/javascript; charset=utf-8", cacheImmutable}},
		{"nested module", "GET", "/assets/" + v + "/vtable.js", response{200, "text/javascript; charset=utf-8", cacheImmutable}},
		{"stylesheet", "GET", "/assets/" + v + "/app.css", response{200, "text/css; charset=utf-8", cacheImmutable}},
		{"icon", "GET", "/assets/" + v + "/icon.svg", response{200, "image/svg+xml", cacheImmutable}},
		{"asset of another build", "GET", "/assets/0123456789abcdef/app.js", response{200, "text/javascript; charset=utf-8", cacheStale}},
		{"page is not an asset", "GET", "/assets/" + v + "/index.html", response{404, "application/problem+json", "no-store"}},
		{"missing asset", "GET", "/assets/" + v + "/nope.js", response{404, "application/problem+json", "no-store"}},
		{"unknown path", "GET", "/jobs", response{404, "application/problem+json", "no-store"}},
		{"api path is not the page's", "GET", "/api/v1/jobs", response{404, "application/problem+json", "no-store"}},
		{"post to page", "POST", "/", response{405, "application/problem+json", "no-store"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, h, tt.method, tt.target, nil)
			got := response{res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Cache-Control")}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s %s: response mismatch (-want +got):\n%s", tt.method, tt.target, diff)
			}
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := Handler()
	page := get(t, h, "GET", "/", nil)
	if got := page.Header.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'none'") || !strings.Contains(got, "connect-src 'self'") {
		t.Errorf("page Content-Security-Policy = %q, want a same-origin-only policy", got)
	}
	for _, target := range []string{"/", "/assets/" + Version() + "/app.js"} {
		if got := get(t, h, "GET", target, nil).Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options = %q, want nosniff", target, got)
		}
	}
}

func TestPageLinksResolve(t *testing.T) {
	h := Handler()
	page := body(t, get(t, h, "GET", "/", nil))
	if strings.Contains(page, assetToken) {
		t.Fatalf("page still holds the %s token", assetToken)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 3 {
		t.Fatalf("page references %d assets, want at least the stylesheet, the module and the icon", len(refs))
	}
	for _, m := range refs {
		if self, ok := strings.CutPrefix(m[1], "./"); ok && (self == "" || strings.HasPrefix(self, "?")) {
			continue // a link to the page itself, in another view
		}
		want := "assets/" + Version() + "/"
		if !strings.HasPrefix(m[1], want) {
			t.Errorf("page references %q, want a relative URL under %s", m[1], want)
			continue
		}
		if res := get(t, h, "GET", "/"+m[1], nil); res.StatusCode != http.StatusOK {
			t.Errorf("GET /%s: status %d, want 200", m[1], res.StatusCode)
		}
	}
}

// TestModuleImportsResolve checks that every module imports only modules
// that are embedded beside it: a typo would break the page only at run time.
func TestModuleImportsResolve(t *testing.T) {
	files := embeddedFiles(t)
	imports := regexp.MustCompile(`(?m)^(?:import|export)\s[^;]*?from\s+"([^"]+)"`)
	for name, src := range files {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		for _, m := range imports.FindAllStringSubmatch(string(src), -1) {
			target, ok := strings.CutPrefix(m[1], "./")
			if !ok {
				t.Errorf("%s imports %q, want a relative module beside it", name, m[1])
				continue
			}
			if _, ok := files[target]; !ok {
				t.Errorf("%s imports %q, which is not embedded", name, m[1])
			}
		}
	}
}

// allowedURLs are the only absolute URLs any asset may hold: the BigQuery
// console link a user follows on purpose, and the SVG namespace, which names
// a vocabulary and is never fetched.
var allowedURLs = []string{
	"https://console.cloud.google.com/bigquery?",
	"http://www.w3.org/2000/svg",
}

func TestNoExternalURLs(t *testing.T) {
	abs := regexp.MustCompile(`(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s"'<>)]*`)
	for name, src := range embeddedFiles(t) {
		for _, u := range abs.FindAllString(string(src), -1) {
			if !slices.ContainsFunc(allowedURLs, func(p string) bool { return strings.HasPrefix(u, p) }) {
				t.Errorf("%s refers to %q: assets must not load anything from another origin", name, u)
			}
		}
	}
}

// TestExternalURLScanFindsURLs keeps TestNoExternalURLs honest: its pattern
// must catch the forms an asset could use.
func TestExternalURLScanFindsURLs(t *testing.T) {
	abs := regexp.MustCompile(`(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s"'<>)]*`)
	for _, src := range []string{
		`<script src="https://cdn.example.com/lib.js">`,
		`@import url(//fonts.example.org/css);`,
		`fetch("http://10.0.0.1.nip.io/x")`,
	} {
		if !abs.MatchString(src) {
			t.Errorf("pattern misses the URL in %s", src)
		}
	}
}

func TestConditionalGet(t *testing.T) {
	h := Handler()
	for _, target := range []string{"/", "/assets/" + Version() + "/app.css"} {
		first := get(t, h, "GET", target, nil)
		etag := first.Header.Get("ETag")
		if etag == "" {
			t.Fatalf("%s: no ETag", target)
		}
		again := get(t, h, "GET", target, http.Header{"If-None-Match": {etag}})
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match %s: status %d, want 304", target, etag, again.StatusCode)
		}
	}
}

func TestGzip(t *testing.T) {
	h := Handler()
	target := "/assets/" + Version() + "/app.js"
	plain := get(t, h, "GET", target, nil)
	zipped := get(t, h, "GET", target, http.Header{"Accept-Encoding": {"br, gzip;q=0.8"}})
	if got := zipped.Header.Get("Content-Encoding"); got != "gzip" {
		t.Fatalf("Content-Encoding = %q, want gzip", got)
	}
	if plain.Header.Get("ETag") == zipped.Header.Get("ETag") {
		t.Errorf("plain and gzipped responses share ETag %s", plain.Header.Get("ETag"))
	}
	for _, res := range []*http.Response{plain, zipped} {
		if got := res.Header.Get("Vary"); got != "Accept-Encoding" {
			t.Errorf("Vary = %q, want Accept-Encoding", got)
		}
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatalf("reading gzip body: %v", err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("reading gzip body: %v", err)
	}
	if want := body(t, plain); string(unzipped) != want {
		t.Errorf("gzipped body differs from the plain one (%d vs %d bytes)", len(unzipped), len(want))
	}
}

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"deflate, gzip;q=1.0, *;q=0.5", true},
		{"br", false},
		{"gzip;q=0", false},
		{"gzip; q=0.001", true},
		{"*", true},
		{"identity, *;q=0", false},
		{"gzip;q=bad", false},
	}
	for _, tt := range tests {
		if got := acceptsGzip(tt.header); got != tt.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

func TestLoad(t *testing.T) {
	page := &fstest.MapFile{Data: []byte(`<link href="{{assets}}/a.css">`)}
	css := &fstest.MapFile{Data: []byte(`body{}`)}
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		wantErr error
		wantAny bool // any error will do
	}{
		{"page and stylesheet", fstest.MapFS{"ui/index.html": page, "ui/a.css": css}, nil, false},
		{"unknown file type", fstest.MapFS{"ui/index.html": page, "ui/font.woff2": css}, errUnknownType, false},
		{"no page", fstest.MapFS{"ui/a.css": css}, nil, true},
		{"no directory", fstest.MapFS{}, fs.ErrNotExist, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(tt.fsys)
			switch {
			case tt.wantAny && err == nil:
				t.Errorf("load: got no error, want one")
			case !tt.wantAny && !errors.Is(err, tt.wantErr):
				t.Errorf("load: got error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestLoadFillsVersionIntoPage(t *testing.T) {
	fsys := fstest.MapFS{
		"ui/index.html": {Data: []byte(`<link href="{{assets}}/a.css"><script src="{{assets}}/m/b.js">`)},
		"ui/a.css":      {Data: []byte(`body{}`)},
		"ui/m/b.js":     {Data: []byte(`export {};`)},
	}
	b, err := load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	want := `<link href="assets/` + b.version + `/a.css"><script src="assets/` + b.version + `/m/b.js">`
	if got := string(b.page.body); got != want {
		t.Errorf("page = %s, want %s", got, want)
	}
	if diff := cmp.Diff([]string{"a.css", "m/b.js"}, slices.Sorted(maps.Keys(b.files))); diff != "" {
		t.Errorf("assets mismatch (-want +got):\n%s", diff)
	}
}

func TestVersionFollowsContent(t *testing.T) {
	a := map[string][]byte{"index.html": []byte("x"), "a.js": []byte("1")}
	b := map[string][]byte{"index.html": []byte("x"), "a.js": []byte("2")}
	c := map[string][]byte{"index.html": []byte("x"), "b.js": []byte("1")}
	if version(a) != version(map[string][]byte{"a.js": []byte("1"), "index.html": []byte("x")}) {
		t.Error("version depends on map order")
	}
	if version(a) == version(b) {
		t.Error("version ignores a file's content")
	}
	if version(a) == version(c) {
		t.Error("version ignores a file's name")
	}
}

func embeddedFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := readAll(embedded)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("only %d embedded files", len(files))
	}
	return files
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
