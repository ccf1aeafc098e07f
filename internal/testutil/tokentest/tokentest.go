// Package tokentest is a token issuer for tests: it signs ID tokens with
// keys of its own (RSA for Google-style ID tokens and pushes, EC P-256 for
// Identity-Aware Proxy assertions) and serves their public keys as a JSON
// Web Key Set from a local HTTP server, which the service under test is
// pointed at with --auth-jwks-url.
package tokentest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The issuers whose tokens the service accepts.
const (
	GoogleIssuer = "https://accounts.google.com"
	IAPIssuer    = "https://cloud.google.com/iap"
)

// Issuer signs tokens and serves its keys.
type Issuer struct {
	// JWKSURL serves the issuer's public keys.
	JWKSURL string

	rsa, ec crypto.Signer
}

// New starts an issuer whose key set server stops when t ends.
func New(t testing.TB) *Issuer {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	i := &Issuer{rsa: rk, ec: ek}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: rk.Public(), KeyID: "rsa-1", Algorithm: string(jose.RS256), Use: "sig"},
		{Key: ek.Public(), KeyID: "ec-1", Algorithm: string(jose.ES256), Use: "sig"},
	}}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	i.JWKSURL = srv.URL
	return i
}

// Claims are a token's claims; Standard fills the usual ones.
type Claims map[string]any

// Standard returns the claims of a token for audience, naming email
// (verified) as the bearer, issued by issuer now and valid for an hour.
// A user's account is one its email's domain manages (hd, as Google sets
// it for Workspace accounts); a service account's has no hd.
func Standard(issuer, audience, email string) Claims {
	now := time.Now()
	c := Claims{"iss": issuer, "aud": audience, "sub": "1234567890", "email": email, "email_verified": true,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if _, domain, ok := strings.Cut(email, "@"); ok && !strings.HasSuffix(domain, "gserviceaccount.com") {
		c["hd"] = domain
	}
	return c
}

// ID signs claims as a Google ID token (RS256), as OIDC clients and
// Pub/Sub pushes send them.
func (i *Issuer) ID(t testing.TB, c Claims) string {
	t.Helper()
	return sign(t, jose.RS256, jose.JSONWebKey{Key: i.rsa, KeyID: "rsa-1"}, c)
}

// IAP signs claims as an Identity-Aware Proxy assertion (ES256).
func (i *Issuer) IAP(t testing.TB, c Claims) string {
	t.Helper()
	return sign(t, jose.ES256, jose.JSONWebKey{Key: i.ec, KeyID: "ec-1"}, c)
}

// Push returns the token Pub/Sub attaches to a push for audience, signed as
// account.
func (i *Issuer) Push(t testing.TB, audience, account string) string {
	t.Helper()
	return i.ID(t, Standard(GoogleIssuer, audience, account))
}

func sign(t testing.TB, alg jose.SignatureAlgorithm, key jose.JSONWebKey, c Claims) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(map[string]any(c)).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
