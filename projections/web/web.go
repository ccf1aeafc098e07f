// Package web serves the live running-jobs page: one HTML document and the
// stylesheet, ES modules and icon it loads, all embedded in the binary so the
// page works on a closed network (no CDN, no external fonts, no requests to
// any origin but its own).
//
// The page talks only to the JSON API beside it (api/v1/jobs, api/v1/summary,
// api/v1/jobs/{project}/{location}/{job_id} and the api/v1/stream
// Server-Sent Events), by URLs relative to the page, so the handler can be
// mounted at "/" or under a prefix together with the API.
//
// Caching: the page itself is revalidated on every load (no-cache with an
// ETag); every asset lives under assets/<version>/, where the version is a
// digest of all embedded files, and is cached for a year as immutable. A new
// build therefore changes every asset URL at once and a browser can never mix
// modules of two builds.
package web

import (
	"embed"
	"net/http"
)

//go:embed ui
var embedded embed.FS

// Handler returns the handler that serves the page at "/" (and
// "/index.html") and its assets under "/assets/<version>/". Any other path is
// 404 and any method but GET or HEAD is 405, both as problem documents, so
// it can be mounted at "/" beside more specific API routes.
func Handler() http.Handler {
	return newSite(mustLoad()).routes()
}

// Version identifies the embedded assets: the same build always has the same
// version, and any change to any asset changes it.
func Version() string {
	return mustLoad().version
}
