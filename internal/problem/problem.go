// Package problem writes RFC 9457 problem documents, the shape of the
// service's error answers, and answers with one what no route of a
// http.ServeMux takes: 405 with Allow when the path is served for other
// methods, 404 otherwise (where ServeMux itself would answer in plain
// text).
package problem

import (
	"encoding/json"
	"net/http"
	"strings"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// Document is an RFC 9457 problem document.
type Document struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
}

// New returns the document of status for r, with detail.
func New(r *http.Request, status int, detail string) Document {
	return Document{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Instance: r.URL.Path}
}

// Write answers r with a problem document of the given status, not to be
// cached.
func Write(w http.ResponseWriter, r *http.Request, status int, detail string) {
	Send(w, status, New(r, status, detail))
}

// Send answers with doc, a Document or a struct that embeds one with
// members of its own, as a problem document of the given status, not to
// be cached.
func Send(w http.ResponseWriter, status int, doc any) {
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(doc) // a failed write means the client left
}

// methods are the methods a fallback probes for.
var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// Fallback returns the handler of mux's catch-all pattern (such as "/" or
// "/api/", with no method): a request no other pattern of mux takes gets
// 405 with Allow if another method of its path is served, and 404 with
// notFound as the detail otherwise.
func Fallback(mux *http.ServeMux, notFound string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allow := Allowed(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			Write(w, r, http.StatusMethodNotAllowed, r.Method+" is not allowed here; allowed: "+strings.Join(allow, ", "))
			return
		}
		Write(w, r, http.StatusNotFound, notFound)
	})
}

// Allowed returns the methods for which mux serves r's path by a pattern
// other than the one that took r.
func Allowed(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range methods {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != r.Pattern {
			allow = append(allow, m)
		}
	}
	return allow
}
