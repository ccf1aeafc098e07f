package access

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/internal/testutil/fakeclock"
)

// outcome is what Authenticate decided.
type outcome struct {
	Principal Principal
	Status    int // 200 when accepted
}

// authCase is one request to authenticate.
type authCase struct {
	name   string
	header string // header value; empty: none
	want   outcome
	reason string // found in the error's text; empty when accepted
}

// runAuthCases authenticates each case's request, sending its header as
// header.
func runAuthCases(t *testing.T, a *Authenticator, header string, tests []authCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/jobs", nil)
			if tt.header != "" {
				r.Header.Set(header, tt.header)
			}
			p, err := a.Authenticate(r)
			got := outcome{Principal: p, Status: http.StatusOK}
			if err != nil {
				got.Status = StatusOf(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Authenticate() mismatch (-want +got):\n%s\nerror: %v", diff, err)
			}
			if (err == nil) != (tt.reason == "") || !strings.Contains(errText(err), tt.reason) {
				t.Errorf("Authenticate() error = %v, want one saying %q", err, tt.reason)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// newAuthenticator returns an Authenticator for cfg on clock c.
func newAuthenticator(t testing.TB, cfg Config, c *fakeclock.Clock) *Authenticator {
	t.Helper()
	cfg.Now = c.Now
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAuthenticateIAP(t *testing.T) {
	keys := newJWKS(t, ecKey(), rsaKey())
	a := newAuthenticator(t, Config{Mode: ModeIAP, IAPAudience: iapAud, JWKSURL: keys.URL, Policy: mustPolicy(t, testPolicy)}, newClock())
	tok := func(email string, edit func(map[string]any)) string { return mint(t, ecKey(), iapClaims(email, edit)) }
	alice := tok("alice@acme.example", nil)
	admin := Principal{Email: "alice@acme.example", Role: RoleAdmin, ShowQueries: true, Method: ModeIAP, Expires: t0.Add(10 * time.Minute)}
	unauthorized := outcome{Status: http.StatusUnauthorized}

	tests := []authCase{
		{name: "valid ES256 admin", header: alice, want: outcome{admin, 200}},
		{name: "valid viewer", header: tok("bob@acme.example", nil),
			want: outcome{Principal{Email: "bob@acme.example", Role: RoleViewer, Method: ModeIAP, Expires: t0.Add(10 * time.Minute)}, 200}},
		{name: "email in another case", header: tok("Alice@ACME.example", nil), want: outcome{admin, 200}},
		// domain:acme.example names the accounts acme.example manages (hd),
		// not every address at acme.example.
		{name: "an address at the domain it does not manage", header: tok("bob@acme.example", drop("hd")),
			want:   outcome{Principal{Email: "bob@acme.example", Method: ModeIAP, Expires: t0.Add(10 * time.Minute)}, http.StatusForbidden},
			reason: "bob@acme.example has no role"},
		{name: "an account of the domain with another address", header: tok("bob@acme-analytics.example", set("hd", "acme.example")),
			want: outcome{Principal{Email: "bob@acme-analytics.example", Role: RoleViewer, Method: ModeIAP, Expires: t0.Add(10 * time.Minute)}, 200}},
		{name: "expired within the skew", header: tok("alice@acme.example", set("exp", t0.Add(-30*time.Second).Unix())),
			want: outcome{Principal{Email: "alice@acme.example", Role: RoleAdmin, ShowQueries: true, Method: ModeIAP, Expires: t0.Add(-30 * time.Second)}, 200}},
		{name: "issued within the skew", header: tok("alice@acme.example", set("iat", t0.Add(30*time.Second).Unix())), want: outcome{admin, 200}},
		{name: "no header", want: unauthorized, reason: "no x-goog-iap-jwt-assertion header"},
		{name: "not a token", header: "not-a-token", want: unauthorized, reason: "malformed"},
		{name: "expired", header: tok("alice@acme.example", set("exp", t0.Add(-2*time.Minute).Unix())), want: unauthorized, reason: "expired at 2025-03-03T07:58:00Z"},
		{name: "no expiry", header: tok("alice@acme.example", drop("exp")), want: unauthorized, reason: "no expiry"},
		{name: "issued in the future", header: tok("alice@acme.example", set("iat", t0.Add(5*time.Minute).Unix())), want: unauthorized, reason: "not valid yet: issued at"},
		{name: "not before in 2 minutes", header: tok("alice@acme.example", set("nbf", t0.Add(2*time.Minute).Unix())), want: unauthorized, reason: "not valid yet (nbf)"},
		{name: "not before in 5 minutes", header: tok("alice@acme.example", set("nbf", t0.Add(5*time.Minute).Unix())), want: unauthorized, reason: "before the nbf"},
		{name: "not before within the skew", header: tok("alice@acme.example", set("nbf", t0.Add(30*time.Second).Unix())), want: outcome{admin, 200}},
		{name: "no issue time", header: tok("alice@acme.example", drop("iat")), want: unauthorized, reason: "no issue time"},
		{name: "signed by another key with the same kid", header: mint(t, otherECKey(), iapClaims("alice@acme.example", nil)), want: unauthorized, reason: "failed to verify signature"},
		{name: "signed by an unknown key", header: mint(t, otherECKey().withKid("ec-9"), iapClaims("alice@acme.example", nil)), want: unauthorized, reason: `no key with id "ec-9"`},
		{name: "alg none", header: unsigned(t, "ec-1", iapClaims("alice@acme.example", nil)), want: unauthorized, reason: `unexpected signature algorithm "none"`},
		{name: "RS256 where IAP signs ES256", header: mint(t, rsaKey(), iapClaims("alice@acme.example", nil)), want: unauthorized, reason: `unexpected signature algorithm "RS256"`},
		{name: "HS256 with a public key as secret", header: hmacSigned(t, "ec-1", publicDER(t, ecKey()), iapClaims("alice@acme.example", nil)), want: unauthorized, reason: `unexpected signature algorithm "HS256"`},
		{name: "ES256 kid naming the RSA key", header: mint(t, otherECKey().withKid("rsa-1"), iapClaims("alice@acme.example", nil)), want: unauthorized, reason: "key \"rsa-1\" is for RS256"},
		{name: "missing kid", header: mint(t, ecKey().withKid(""), iapClaims("alice@acme.example", nil)), want: unauthorized, reason: "no key id"},
		{name: "wrong audience", header: tok("alice@acme.example", set("aud", "/projects/999/global/backendServices/1")), want: unauthorized, reason: "another audience"},
		{name: "wrong issuer", header: tok("alice@acme.example", set("iss", "https://accounts.google.com")), want: unauthorized, reason: `issuer "https://accounts.google.com" is not accepted`},
		{name: "tampered payload", header: tampered(t, tok("mallory@evil.example", nil), iapClaims("alice@acme.example", nil)), want: unauthorized, reason: "failed to verify signature"},
		{name: "no email", header: tok("", nil), want: unauthorized, reason: "no email"},
		{name: "too long", header: tok("alice@acme.example", set("pad", strings.Repeat("x", maxTokenBytes))), want: unauthorized, reason: "longer than"},
		{name: "no role", header: tok("mallory@evil.example", nil),
			want:   outcome{Principal{Email: "mallory@evil.example", Method: ModeIAP, Expires: t0.Add(10 * time.Minute)}, http.StatusForbidden},
			reason: "mallory@evil.example has no role"},
	}
	runAuthCases(t, a, iapHeader, tests)
}

func TestAuthenticateOIDC(t *testing.T) {
	keys := newJWKS(t, ecKey(), rsaKey())
	a := newAuthenticator(t, Config{Mode: ModeOIDC, OIDCAudience: oidcAud, JWKSURL: keys.URL, Policy: mustPolicy(t, testPolicy)}, newClock())
	tok := func(k testKey, email string, edit func(map[string]any)) string {
		return "Bearer " + mint(t, k, googleClaims(email, oidcAud, edit))
	}
	contractor := Principal{Email: "contractor@partner.example", Role: RoleOwn, Method: ModeOIDC, Expires: t0.Add(time.Hour)}
	unauthorized := outcome{Status: http.StatusUnauthorized}

	tests := []authCase{
		{name: "valid RS256", header: tok(rsaKey(), "contractor@partner.example", nil), want: outcome{contractor, 200}},
		{name: "issuer without scheme", header: tok(rsaKey(), "contractor@partner.example", set("iss", "accounts.google.com")), want: outcome{contractor, 200}},
		{name: "valid ES256", header: tok(ecKey(), "contractor@partner.example", nil), want: outcome{contractor, 200}},
		{name: "scheme in lower case", header: "bearer " + mint(t, rsaKey(), googleClaims("contractor@partner.example", oidcAud, nil)), want: outcome{contractor, 200}},
		{name: "viewer with show_queries by pattern", header: tok(rsaKey(), "carol@dba.acme.example", nil),
			want: outcome{Principal{Email: "carol@dba.acme.example", Role: RoleViewer, ShowQueries: true, Method: ModeOIDC, Expires: t0.Add(time.Hour)}, 200}},
		{name: "no header", want: unauthorized, reason: "send a Google-signed ID token"},
		{name: "basic credentials", header: "Basic YWxpY2U6c2VjcmV0", want: unauthorized, reason: "send a Google-signed ID token"},
		{name: "empty bearer", header: "Bearer  ", want: unauthorized, reason: "send a Google-signed ID token"},
		{name: "expired", header: tok(rsaKey(), "alice@acme.example", set("exp", t0.Add(-time.Hour).Unix())), want: unauthorized, reason: "expired"},
		{name: "not yet valid", header: tok(rsaKey(), "alice@acme.example", set("iat", t0.Add(time.Hour).Unix())), want: unauthorized, reason: "not valid yet"},
		{name: "signed by another key", header: tok(otherRSAKey(), "alice@acme.example", nil), want: unauthorized, reason: "failed to verify signature"},
		{name: "alg none", header: "Bearer " + unsigned(t, "rsa-1", googleClaims("alice@acme.example", oidcAud, nil)), want: unauthorized, reason: `unexpected signature algorithm "none"`},
		{name: "wrong audience", header: tok(rsaKey(), "alice@acme.example", set("aud", "https://elsewhere.example")), want: unauthorized, reason: "another audience"},
		{name: "audience among several", header: tok(rsaKey(), "contractor@partner.example", set("aud", []string{"https://elsewhere.example", oidcAud})), want: outcome{contractor, 200}},
		{name: "wrong issuer", header: tok(rsaKey(), "alice@acme.example", set("iss", iapIssuer)), want: unauthorized, reason: "issuer"},
		{name: "tampered payload", header: "Bearer " + tampered(t, mint(t, rsaKey(), googleClaims("mallory@evil.example", oidcAud, nil)), googleClaims("alice@acme.example", oidcAud, nil)), want: unauthorized, reason: "failed to verify signature"},
		{name: "missing kid", header: tok(rsaKey().withKid(""), "alice@acme.example", nil), want: unauthorized, reason: "no key id"},
		{name: "email not verified", header: tok(rsaKey(), "alice@acme.example", set("email_verified", false)),
			want: outcome{Principal{Email: "alice@acme.example", Method: ModeOIDC}, http.StatusForbidden}, reason: "not verified"},
		{name: "no role", header: tok(rsaKey(), "alice@partner.example", nil),
			want: outcome{Principal{Email: "alice@partner.example", Method: ModeOIDC, Expires: t0.Add(time.Hour)}, http.StatusForbidden}, reason: "no role"},
	}
	runAuthCases(t, a, "Authorization", tests)
}

func TestAuthenticateNone(t *testing.T) {
	a := newAuthenticator(t, Config{Mode: ModeNone, ListenAddr: "127.0.0.1:8080"}, newClock())
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer garbage")
	got, err := a.Authenticate(r)
	if err != nil {
		t.Fatal(err)
	}
	want := Principal{Email: "anonymous", Role: RoleAdmin, ShowQueries: true, Method: ModeNone}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Authenticate() mismatch (-want +got):\n%s", diff)
	}
}

func TestAuthenticateWithoutKeys(t *testing.T) {
	keys := newJWKS(t, ecKey())
	keys.answer(http.StatusInternalServerError)
	a := newAuthenticator(t, Config{Mode: ModeIAP, IAPAudience: iapAud, JWKSURL: keys.URL, Policy: mustPolicy(t, testPolicy)}, newClock())
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set(iapHeader, mint(t, ecKey(), iapClaims("alice@acme.example", nil)))
	_, err := a.Authenticate(r)
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Authenticate() error = %v, want ErrUnavailable", err)
	}
}
