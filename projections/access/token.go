package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// maxTokenBytes bounds the size of a token worth parsing; Google's are
// about 1 KiB.
const maxTokenBytes = 16 << 10

// tokenSpec is what a verifier accepts.
type tokenSpec struct {
	issuers  []string // any of them
	audience string   // must be among the token's audiences
	algs     []string // signature algorithms
}

// tokenVerifier checks JWTs: go-oidc checks the format, the algorithm, the
// signature (with keys from the key set) and the expiry; the verifier
// checks issuer, audience, issue and not-before times, and reads the email.
type tokenVerifier struct {
	keys *keySet
	oidc *oidc.IDTokenVerifier
	spec tokenSpec
	now  func() time.Time
}

// newTokenVerifier returns a verifier of tokens matching spec.
func newTokenVerifier(keys *keySet, spec tokenSpec, now func() time.Time) *tokenVerifier {
	v := oidc.NewVerifier("", keys, &oidc.Config{
		SupportedSigningAlgs: spec.algs,
		// Checked by claims, with errors that do not echo the expected values.
		SkipClientIDCheck: true,
		SkipIssuerCheck:   true,
		// go-oidc has no leeway on expiry: run its clock ClockSkew behind.
		Now: func() time.Time { return now().Add(-ClockSkew) },
	})
	return &tokenVerifier{keys: keys, oidc: v, spec: spec, now: now}
}

// identity is what a verified token says of its bearer.
type identity struct {
	email         string // lower case
	emailVerified bool
	// hostedDomain is the Google Workspace or Cloud Identity domain that
	// manages the account (the hd claim, lower case), empty for one no
	// domain manages.
	hostedDomain string
	expires      time.Time
}

// tokenClaims are the claims go-oidc does not read for us.
type tokenClaims struct {
	Email         string   `json:"email"`
	EmailVerified any      `json:"email_verified"` // Google: a boolean; some issuers: "true"
	HostedDomain  string   `json:"hd"`
	NotBefore     *float64 `json:"nbf"`
}

// verify checks raw and returns its bearer. Errors wrap ErrUnauthenticated,
// or ErrUnavailable when there are no keys to check it with.
func (v *tokenVerifier) verify(ctx context.Context, raw string) (identity, error) {
	return v.verifyFor(ctx, raw, v.spec.audience)
}

// verifyFor is verify for a token that must be for audience.
func (v *tokenVerifier) verifyFor(ctx context.Context, raw, audience string) (identity, error) {
	if len(raw) > maxTokenBytes {
		return identity{}, fmt.Errorf("%w: token longer than %d bytes", ErrUnauthenticated, maxTokenBytes)
	}
	if err := v.keys.ready(ctx); err != nil {
		return identity{}, err
	}
	tok, err := v.oidc.Verify(ctx, raw)
	if err != nil {
		return identity{}, rejected(err)
	}
	var c tokenClaims
	if err := tok.Claims(&c); err != nil {
		return identity{}, fmt.Errorf("%w: decoding token claims: %v", ErrUnauthenticated, err)
	}
	if err := v.check(tok, c, audience); err != nil {
		return identity{}, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	return identity{email: strings.ToLower(c.Email), emailVerified: isTrue(c.EmailVerified),
		hostedDomain: strings.ToLower(c.HostedDomain), expires: tok.Expiry}, nil
}

// rejected translates go-oidc's refusal into an ErrUnauthenticated.
func rejected(err error) error {
	var expired *oidc.TokenExpiredError
	switch {
	case !errors.As(err, &expired):
		return fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	case expired.Expiry.IsZero():
		return fmt.Errorf("%w: token has no expiry", ErrUnauthenticated)
	default:
		return fmt.Errorf("%w: token expired at %s", ErrUnauthenticated, expired.Expiry.UTC().Format(time.RFC3339))
	}
}

// check checks the claims go-oidc left to us.
func (v *tokenVerifier) check(tok *oidc.IDToken, c tokenClaims, audience string) error {
	latest := v.now().Add(ClockSkew)
	switch {
	case !slices.Contains(v.spec.issuers, tok.Issuer):
		return fmt.Errorf("token issuer %q is not accepted", tok.Issuer)
	case !slices.Contains(tok.Audience, audience):
		return errors.New("token is for another audience")
	case tok.IssuedAt.IsZero():
		return errors.New("token has no issue time")
	case tok.IssuedAt.After(latest):
		return fmt.Errorf("token not valid yet: issued at %s", tok.IssuedAt.UTC().Format(time.RFC3339))
	case c.NotBefore != nil && time.Unix(int64(*c.NotBefore), 0).After(latest):
		return errors.New("token not valid yet (nbf)")
	case c.Email == "":
		return errors.New("token carries no email")
	}
	return nil
}

// isTrue reports whether a claim is true, as a boolean or a string.
func isTrue(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}
