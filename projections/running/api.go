package running

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"slices"

	httpproblem "github.com/bqobserver/bqobserver/internal/problem"
)

// route is one endpoint: its method and path pattern, the query parameters
// it accepts (any other is a 400) and how to check their values, whether it
// ignores query parameters altogether instead, whether it waits for the
// projection to be ready, and whether it reads the event log (and so runs
// under RequestTimeout).
type route struct {
	method, path string
	// pattern is the ServeMux pattern when path cannot be one (a path
	// segment that is more than a wildcard); "" means method and path.
	pattern    string
	params     []string
	check      func(url.Values) []paramError
	anyParams  bool
	needsReady bool
	readsLog   bool
	serve      func(p *Projection, w http.ResponseWriter, r *http.Request)
}

// Parameters of the list beyond the filters.
var pageParams = []string{"sort", "cursor", "limit"}

// routes is every endpoint of the handler; the OpenAPI document describes
// exactly these (a test holds them to it).
func routes() []route {
	list := slices.Concat(filterParams, pageParams)
	stream := slices.Concat(filterParams, []string{"snapshot"})
	history := slices.Concat(list, historyParams)
	return []route{
		{method: "GET", path: "/api/v1/jobs", params: list, check: checkList, needsReady: true, serve: (*Projection).serveList},
		{method: "GET", path: "/api/v1/jobs/{project}/{location}/{job_id}", needsReady: true, readsLog: true, serve: (*Projection).serveJob},
		{method: "POST", path: "/api/v1/jobs/{project}/{location}/{job_id}:cancel", pattern: "POST /api/v1/jobs/{project}/{location}/{job_action}",
			needsReady: true, serve: (*Projection).serveCancel},
		{method: "GET", path: "/api/v1/summary", needsReady: true, serve: (*Projection).serveSummary},
		{method: "GET", path: "/api/v1/diagnostics", readsLog: true, serve: (*Projection).serveDiagnostics},
		{method: "GET", path: "/api/v1/me", serve: (*Projection).serveMe},
		{method: "GET", path: "/api/v1/stream", params: stream, check: checkStream, needsReady: true, serve: (*Projection).serveStream},
		{method: "GET", path: "/api/v1/history", params: history, check: checkHistory, serve: (*Projection).serveHistory},
		{method: "GET", path: "/api/v1/openapi.json", serve: (*Projection).serveOpenAPI},
		{method: "GET", path: "/api/v1/links", serve: (*Projection).serveLinks},
		{method: "GET", path: "/_ah/get-handlers/v1/jobs", anyParams: true, needsReady: true, serve: (*Projection).serveLegacy},
		{method: "GET", path: "/healthz", anyParams: true, serve: (*Projection).serveHealth},
		{method: "GET", path: "/readyz", anyParams: true, serve: (*Projection).serveReady},
	}
}

// Handler returns the handler of the JSON API, the original endpoint and the
// health checks. It owns the paths under /api/ (an unknown one is a 404
// problem document), /_ah/get-handlers/v1/jobs, /healthz and /readyz, and
// answers 405 to methods other than those of each endpoint; mount it for
// those beside the web page's handler. Every endpoint but the health
// checks and the OpenAPI document answers what the caller's scope lets it
// see (access.ScopeFrom): put the authentication middleware in front.
func (p *Projection) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes() {
		mux.Handle(cmp.Or(rt.pattern, rt.method+" "+rt.path), p.guard(rt))
	}
	mux.Handle("/", httpproblem.Fallback(mux, "no such endpoint; see /api/v1/openapi.json"))
	return mux
}

// guard rejects unknown parameters and bad values, all reported at once,
// and, until the projection is ready, answers 503 with Retry-After. A route
// that reads the event log gets a context that ends after RequestTimeout.
func (p *Projection) guard(rt route) http.Handler {
	allowed := map[string]bool{}
	for _, name := range rt.params {
		allowed[name] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !rt.anyParams {
			bad := unknownParams(r, allowed)
			if rt.check != nil {
				bad = append(bad, rt.check(r.URL.Query())...)
			}
			if len(bad) > 0 {
				badRequest(w, r, bad)
				return
			}
		}
		if rt.needsReady && !p.Ready() {
			unavailable(w, r, p.cfg.RetryAfter, p.notReadyReason())
			return
		}
		if rt.readsLog {
			ctx, cancel := context.WithTimeout(r.Context(), p.cfg.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		rt.serve(p, w, r)
	})
}

func unknownParams(r *http.Request, allowed map[string]bool) []paramError {
	var bad []paramError
	for name := range r.URL.Query() {
		if !allowed[name] {
			bad = append(bad, paramError{Name: name, Reason: "unknown parameter"})
		}
	}
	slices.SortFunc(bad, func(a, b paramError) int { return cmp.Compare(a.Name, b.Name) })
	return bad
}

func (p *Projection) notReadyReason() string {
	if !p.rebuilt.Load() {
		return "the running-jobs list is being rebuilt from the event log"
	}
	return "the live feed of events is not attached yet"
}

func (p *Projection) serveHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, map[string]string{"status": "ok"})
}
