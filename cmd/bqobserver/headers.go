package main

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/bqobserver/bqobserver/internal/problem"
	"github.com/bqobserver/bqobserver/projections/access"
)

// apiPolicy is the Content-Security-Policy of every answer but the page,
// which sets its own: nothing may load, run or frame it.
const apiPolicy = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// securityHeaders sets on every answer the headers that keep browsers from
// misusing it: no content-type sniffing, no framing, no referrer beyond the
// service's own origin, and no reading by pages of other origins. A handler
// may set a stricter or page-specific value of its own.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", apiPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// loopbackHosts answers 403 to every request whose Host does not name a
// loopback interface, when on is set: with --auth=none on a loopback
// address (the default) every caller is an admin, and a page of another
// site could otherwise rebind its name to 127.0.0.1 and read the jobs, or
// cancel them, as the same origin.
func loopbackHosts(next http.Handler, on bool, log *slog.Logger) http.Handler {
	if !on {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !access.IsLoopbackHost(r.Host) {
			msg := fmt.Sprintf("with --auth=none this service answers only requests that name it by a loopback host (localhost, 127.0.0.1, [::1]); %q is not one "+
				"(behind a proxy on this machine that passes its own Host through, which must then authenticate for it, pass --allow-unauthenticated)", r.Host)
			log.Info("request refused", "status", http.StatusForbidden, "path", r.URL.Path, "error", msg)
			problem.Write(w, r, http.StatusForbidden, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}
