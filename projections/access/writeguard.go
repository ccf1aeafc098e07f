package access

import (
	"fmt"
	"mime"
	"net/http"
)

// WriteGuard refuses cross-site state-changing requests. It is safe for
// concurrent use.
type WriteGuard struct {
	origins *http.CrossOriginProtection
}

// NewWriteGuard returns a guard that also trusts the given origins
// ("https://tools.acme.example", scheme, host and optional port)
// [--allowed-origins]; requests from the service's own origin are always
// allowed.
func NewWriteGuard(trustedOrigins []string) (*WriteGuard, error) {
	g := &WriteGuard{origins: http.NewCrossOriginProtection()}
	for _, o := range trustedOrigins {
		if err := g.origins.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("--allowed-origins: %w", err)
		}
	}
	return g, nil
}

// Check returns nil for a safe method (GET, HEAD, OPTIONS). Any other
// request must come from the service's own origin or a trusted one, as
// net/http.CrossOriginProtection judges it from Sec-Fetch-Site and Origin
// (a request with neither is not from a browser and passes), else the error
// wraps ErrForbidden; and it must declare Content-Type: application/json,
// even with an empty body, else the error wraps ErrUnsupportedMediaType. No
// cross-site form or simple request can declare it without a CORS preflight
// this service never grants.
func (g *WriteGuard) Check(r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if g.origins.Check(r) != nil {
		return fmt.Errorf("%w: a %s request must come from this service's own origin or a trusted one", ErrForbidden, r.Method)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return fmt.Errorf("%w: a %s request must have Content-Type: application/json", ErrUnsupportedMediaType, r.Method)
	}
	return nil
}

// Middleware checks every request before calling next, and refuses with a
// problem document: 403 for a cross-origin request, 415 for another
// content type.
func (g *WriteGuard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.Check(r); err != nil {
			refuse(w, r, err, "", nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}
