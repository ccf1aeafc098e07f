package access

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
)

// iapHeader carries Identity-Aware Proxy's signed assertion.
const iapHeader = "X-Goog-Iap-Jwt-Assertion"

// errNoCredentials is wrapped by the errors of requests that carry no
// credentials at all, as opposed to invalid ones.
var errNoCredentials = errors.New("no credentials")

// Authenticator identifies the caller of each request and resolves its role.
// It is safe for concurrent use.
type Authenticator struct {
	mode      Mode
	tokens    *tokenVerifier // nil in ModeNone
	policy    *Policy
	challenge string
	onReject  func(*http.Request, int, error)
}

// New returns an Authenticator for cfg, which fetches its verifying keys
// with client (nil: a client with a 10s timeout). Keys are fetched on the
// first request, not here, so that New needs no network.
func New(cfg Config, client *http.Client) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if client == nil {
		client = &http.Client{Timeout: keysFetchTimeout}
	}
	a := &Authenticator{mode: cfg.Mode, policy: cfg.Policy, onReject: cfg.OnReject}
	switch cfg.Mode {
	case ModeIAP:
		spec := tokenSpec{issuers: []string{iapIssuer}, audience: cfg.IAPAudience, algs: []string{oidc.ES256}}
		a.tokens = newTokenVerifier(newKeySet(cfg.JWKSURL, client, cfg.Now), spec, cfg.Now)
		a.challenge = `IAP realm="bqobserver"`
	case ModeOIDC:
		spec := tokenSpec{issuers: issuersOf(cfg.OIDCIssuer), audience: cfg.OIDCAudience, algs: []string{oidc.RS256, oidc.ES256}}
		a.tokens = newTokenVerifier(newKeySet(cfg.JWKSURL, client, cfg.Now), spec, cfg.Now)
		a.challenge = `Bearer realm="bqobserver"`
	}
	return a, nil
}

// issuersOf returns the spellings of issuer that tokens use: Google's ID
// tokens name theirs with or without the scheme.
func issuersOf(issuer string) []string {
	if issuer == googleIssuer {
		return []string{googleIssuer, strings.TrimPrefix(googleIssuer, "https://")}
	}
	return []string{issuer}
}

// Authenticate identifies the caller of r and resolves its role. The error
// wraps ErrUnauthenticated (no or invalid credentials), ErrForbidden (no
// role, or an unverified email) or ErrUnavailable (keys cannot be fetched);
// with ErrForbidden the returned Principal names the caller.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	if a.mode == ModeNone {
		return Anonymous(), nil
	}
	raw, err := a.credentials(r)
	if err != nil {
		return Principal{}, err
	}
	id, err := a.tokens.verify(r.Context(), raw)
	if err != nil {
		return Principal{}, err
	}
	g := a.policy.Resolve(id.email, id.hostedDomain)
	p := Principal{Email: id.email, Role: g.Role, ShowQueries: g.ShowQueries || g.Role == RoleAdmin, Method: a.mode, Expires: id.expires}
	switch {
	case a.mode == ModeOIDC && !id.emailVerified:
		return Principal{Email: id.email, Method: a.mode}, fmt.Errorf("%w: the token's email %s is not verified", ErrForbidden, id.email)
	case g.Role == RoleNone:
		return p, fmt.Errorf("%w: %s has no role in the access policy", ErrForbidden, id.email)
	}
	return p, nil
}

// credentials returns the token r carries for the mode.
func (a *Authenticator) credentials(r *http.Request) (string, error) {
	if a.mode == ModeIAP {
		raw := r.Header.Get(iapHeader)
		if raw == "" {
			return "", fmt.Errorf("%w: %w: no %s header; requests must come through Identity-Aware Proxy", ErrUnauthenticated, errNoCredentials, strings.ToLower(iapHeader))
		}
		return raw, nil
	}
	return bearer(r)
}

// bearer returns the token of r's Authorization: Bearer header.
func bearer(r *http.Request) (string, error) {
	scheme, raw, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	raw = strings.TrimSpace(raw)
	if !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return "", fmt.Errorf("%w: %w: send a Google-signed ID token as Authorization: Bearer", ErrUnauthenticated, errNoCredentials)
	}
	return raw, nil
}

// Middleware authenticates every request, puts its Principal in the
// request's context (see PrincipalFrom) and calls next. It refuses with a
// problem document: 401 with WWW-Authenticate for missing or invalid
// credentials, 403 for a caller without a role, 503 with Retry-After when
// the keys cannot be fetched. Wrap only what needs a caller: health checks
// stay outside.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		if err != nil {
			refuse(w, r, err, challenge(a.challenge, err), a.onReject)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// Optional is Middleware for what anyone may call but a caller may learn
// more from (readiness): it puts the caller's Principal in the request's
// context when the request's credentials verify and name a role, and
// otherwise the zero Principal, which sees nothing; it refuses no one.
func (a *Authenticator) Optional(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		if err != nil {
			p = Principal{}
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// challenge returns the WWW-Authenticate value for err: the scheme, and
// error="invalid_token" when credentials were sent but did not verify
// (RFC 6750 §3).
func challenge(base string, err error) string {
	if errors.Is(err, errNoCredentials) {
		return base
	}
	return base + `, error="invalid_token"`
}
