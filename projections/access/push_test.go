package access

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPushVerify(t *testing.T) {
	keys := newJWKS(t, ecKey(), rsaKey())
	c := newClock()
	v, err := NewPushVerifier(PushConfig{Audience: pushAud, ServiceAccount: pushAccount, JWKSURL: keys.URL, Now: c.Now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	push := func(k testKey, email string, edit func(map[string]any)) string {
		return "Bearer " + mint(t, k, googleClaims(email, pushAud, edit))
	}
	tests := []struct {
		name       string
		auth       string
		wantStatus int // 200 when accepted
		reason     string
	}{
		{name: "valid RS256", auth: push(rsaKey(), pushAccount, nil), wantStatus: 200},
		{name: "account in another case", auth: push(rsaKey(), strings.ToUpper(pushAccount), nil), wantStatus: 200},
		{name: "issuer without scheme", auth: push(rsaKey(), pushAccount, set("iss", "accounts.google.com")), wantStatus: 200},
		{name: "no token", wantStatus: 401, reason: "send a Google-signed ID token"},
		{name: "another service account", auth: push(rsaKey(), "intruder@other.iam.gserviceaccount.com", nil), wantStatus: 403, reason: "signed as intruder@other.iam.gserviceaccount.com"},
		{name: "email not verified", auth: push(rsaKey(), pushAccount, set("email_verified", false)), wantStatus: 403, reason: "not verified"},
		{name: "email_verified missing", auth: push(rsaKey(), pushAccount, drop("email_verified")), wantStatus: 403, reason: "not verified"},
		{name: "another audience", auth: push(rsaKey(), pushAccount, set("aud", "https://other.example/push")), wantStatus: 401, reason: "another audience"},
		{name: "IAP issuer", auth: push(rsaKey(), pushAccount, set("iss", iapIssuer)), wantStatus: 401, reason: "issuer"},
		{name: "expired", auth: push(rsaKey(), pushAccount, set("exp", t0.Add(-5*time.Minute).Unix())), wantStatus: 401, reason: "expired"},
		{name: "not yet valid", auth: push(rsaKey(), pushAccount, set("iat", t0.Add(5*time.Minute).Unix())), wantStatus: 401, reason: "not valid yet"},
		{name: "signed by another key", auth: push(otherRSAKey(), pushAccount, nil), wantStatus: 401, reason: "failed to verify signature"},
		{name: "ES256", auth: push(ecKey(), pushAccount, nil), wantStatus: 401, reason: `unexpected signature algorithm "ES256"`},
		{name: "alg none", auth: "Bearer " + unsigned(t, "rsa-1", googleClaims(pushAccount, pushAud, nil)), wantStatus: 401, reason: `"none"`},
		{name: "tampered", auth: "Bearer " + tampered(t, mint(t, rsaKey(), googleClaims("intruder@other.iam.gserviceaccount.com", pushAud, nil)), googleClaims(pushAccount, pushAud, nil)), wantStatus: 401, reason: "failed to verify signature"},
		{name: "missing kid", auth: push(rsaKey().withKid(""), pushAccount, nil), wantStatus: 401, reason: "no key id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/push/audit", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			err := v.Verify(r)
			got := http.StatusOK
			if err != nil {
				got = StatusOf(err)
			}
			if got != tt.wantStatus || (err == nil) != (tt.reason == "") || !strings.Contains(errText(err), tt.reason) {
				t.Errorf("Verify() = %d, %v; want %d, an error saying %q", got, err, tt.wantStatus, tt.reason)
			}
		})
	}
}

// TestPushVerifyTheURLsAudience: without an audience configured, a push's
// token must be for the push URL the request names, whatever host it came
// by; pushes refused for other hosts (any number of them) leave the
// verifier as it was, so a good push still passes after them.
func TestPushVerifyTheURLsAudience(t *testing.T) {
	keys := newJWKS(t, rsaKey())
	v, err := NewPushVerifier(PushConfig{ServiceAccount: pushAccount, JWKSURL: keys.URL, Now: newClock().Now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(host, aud string) error {
		r := httptest.NewRequest(http.MethodPost, "https://"+host+"/push/audit", nil)
		r.Header.Set("Authorization", "Bearer "+mint(t, rsaKey(), googleClaims(pushAccount, aud, nil)))
		return v.Verify(r)
	}
	for i := range 64 {
		host := fmt.Sprintf("intruder-%d.example", i)
		if err := verify(host, pushAud); StatusOf(err) != http.StatusUnauthorized || !strings.Contains(errText(err), "another audience") {
			t.Fatalf("a push to %s with a token for %s: %v, want 401 for another audience", host, pushAud, err)
		}
	}
	for _, host := range []string{"bqobserver.acme.example", "bqobserver-abc123-uc.a.run.app"} {
		if err := verify(host, "https://"+host+"/push/audit"); err != nil {
			t.Errorf("a push to %s with a token for its URL: %v", host, err)
		}
	}
	// An endpoint with a query string: Pub/Sub's audience is the whole URL.
	r := httptest.NewRequest(http.MethodPost, "https://bqobserver.acme.example/push/audit?source=org-sink", nil)
	r.Header.Set("Authorization", "Bearer "+mint(t, rsaKey(), googleClaims(pushAccount, "https://bqobserver.acme.example/push/audit?source=org-sink", nil)))
	if err := v.Verify(r); err != nil {
		t.Errorf("a push to an endpoint with a query string, its token for that URL: %v", err)
	}
}

func TestPushConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  PushConfig
		want []string
	}{
		{name: "complete", cfg: PushConfig{Audience: pushAud, ServiceAccount: pushAccount}},
		{name: "the push URL as the audience", cfg: PushConfig{ServiceAccount: pushAccount}},
		{name: "empty", cfg: PushConfig{}, want: []string{
			`verifying pushes needs --push-service-account, the email of the account Pub/Sub signs pushes as (got "")`,
		}},
		{name: "not an email", cfg: PushConfig{Audience: pushAud, ServiceAccount: "pubsub-push"}, want: []string{
			`verifying pushes needs --push-service-account, the email of the account Pub/Sub signs pushes as (got "pubsub-push")`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, joined(tt.cfg.Validate())); diff != "" {
				t.Errorf("Validate() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
