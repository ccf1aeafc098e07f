package web

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bqobserver/bqobserver/internal/problem"
)

// Cache policies. The page is small and names the current asset version, so
// it is revalidated on every load; versioned assets never change.
const (
	cachePage      = "no-cache"
	cacheImmutable = "public, max-age=31536000, immutable"
	// cacheStale is for a request naming another build's version (a page
	// loaded before a deploy): it gets this build's file, which must not be
	// cached under the old name.
	cacheStale = "no-store"
)

// pagePolicy is the Content-Security-Policy of the page: everything from its
// own origin, nothing inline, no framing.
const pagePolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// site serves one loaded bundle.
type site struct {
	b *bundle
}

func newSite(b *bundle) *site { return &site{b: b} }

func (s *site) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.HandleFunc("GET /index.html", s.servePage)
	mux.HandleFunc("GET /assets/{version}/{file...}", s.serveAsset)
	mux.Handle("/", problem.Fallback(mux, "no such page"))
	return mux
}

func (s *site) servePage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", pagePolicy)
	h.Set("Referrer-Policy", "same-origin")
	serve(w, r, &s.b.page, cachePage)
}

func (s *site) serveAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := s.b.files[r.PathValue("file")]
	if !ok {
		problem.Write(w, r, http.StatusNotFound, "no such asset")
		return
	}
	policy := cacheImmutable
	if r.PathValue("version") != s.b.version {
		policy = cacheStale
	}
	serve(w, r, &a, policy)
}

// serve writes a with its type, cache policy and ETag, gzipped when the
// client accepts it, and answers conditional and HEAD requests.
func serve(w http.ResponseWriter, r *http.Request, a *asset, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	body, etag := a.body, a.etag
	if a.gzipped != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			body, etag = a.gzipped, strings.TrimSuffix(a.etag, `"`)+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip (or any
// coding) with a non-zero quality.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		return quality(params) > 0
	}
	return false
}

// quality returns the q parameter of an Accept-Encoding element, 1 if absent
// and 0 if malformed.
func quality(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0
			}
			return q
		}
	}
	return 1
}
