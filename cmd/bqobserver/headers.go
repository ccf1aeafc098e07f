package main

import "net/http"

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
