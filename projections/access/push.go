package access

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// PushConfig configures a PushVerifier. The suggested flag of each field is
// in brackets.
type PushConfig struct {
	// Audience is the audience of the push subscription's tokens
	// [--push-audience]. Empty: the push URL each request names
	// (https://HOST/PATH?QUERY), which is Pub/Sub's default audience. One verifier
	// serves every such URL with one key set, and a refused push leaves
	// nothing behind.
	Audience string
	// ServiceAccount is the email of the service account whose tokens
	// Pub/Sub attaches to every push [--push-service-account]. Required.
	ServiceAccount string
	// JWKSURL overrides where the verifying keys come from
	// [--push-jwks-url]. Default Google's keys, which sign every push.
	JWKSURL string
	// OnReject, when set, is called for every refused push with the status
	// answered and the reason, to count or log refusals.
	OnReject func(r *http.Request, status int, err error)
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// Validate reports every problem of c at once.
func (c PushConfig) Validate() error {
	var errs []error
	if _, domain, ok := strings.Cut(c.ServiceAccount, "@"); !ok || domain == "" {
		errs = append(errs, fmt.Errorf("verifying pushes needs --push-service-account, the email of the account Pub/Sub signs pushes as (got %q)", c.ServiceAccount))
	}
	return errors.Join(errs...)
}

// PushVerifier checks the OIDC token Pub/Sub attaches to each push. It is
// safe for concurrent use.
type PushVerifier struct {
	tokens   *tokenVerifier
	audience string // "": the push URL the request names
	account  string // lower case
	onReject func(*http.Request, int, error)
}

// NewPushVerifier returns a PushVerifier for cfg, which fetches its keys
// with client (nil: a client with a 10s timeout) on the first push.
func NewPushVerifier(cfg PushConfig, client *http.Client) (*PushVerifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.JWKSURL == "" {
		cfg.JWKSURL = googleKeysURL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if client == nil {
		client = &http.Client{Timeout: keysFetchTimeout}
	}
	spec := tokenSpec{issuers: issuersOf(googleIssuer), audience: cfg.Audience, algs: []string{oidc.RS256}}
	return &PushVerifier{
		tokens:   newTokenVerifier(newKeySet(cfg.JWKSURL, client, cfg.Now), spec, cfg.Now),
		audience: cfg.Audience,
		account:  strings.ToLower(cfg.ServiceAccount),
		onReject: cfg.OnReject,
	}, nil
}

// Verify checks the push r: a Google-signed token for the audience (or the
// push URL r names) as Authorization: Bearer (else an error wrapping
// ErrUnauthenticated), whose
// email is the push service account and verified (else ErrForbidden).
// ErrUnavailable means the keys cannot be fetched now; Pub/Sub retries.
func (v *PushVerifier) Verify(r *http.Request) error {
	raw, err := bearer(r)
	if err != nil {
		return err
	}
	audience := v.audience
	if audience == "" { // Pub/Sub's default: the push endpoint, query string included
		audience = "https://" + r.Host + r.URL.RequestURI()
	}
	id, err := v.tokens.verifyFor(r.Context(), raw, audience)
	if err != nil {
		return err
	}
	switch {
	case id.email != v.account:
		return fmt.Errorf("%w: push signed as %s, not as the push service account", ErrForbidden, id.email)
	case !id.emailVerified:
		return fmt.Errorf("%w: push token's email %s is not verified", ErrForbidden, id.email)
	}
	return nil
}

// Middleware verifies every push before calling next, and refuses with a
// problem document: 401 with WWW-Authenticate, 403, or 503 with
// Retry-After. It reads no body, so a refused push costs no more than its
// headers.
func (v *PushVerifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := v.Verify(r); err != nil {
			refuse(w, r, err, challenge(`Bearer realm="bqobserver-push"`, err), v.onReject)
			return
		}
		next.ServeHTTP(w, r)
	})
}
