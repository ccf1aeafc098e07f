package access

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// answer is what a client saw.
type answer struct {
	Status    int
	Header    map[string]string // the headers named in the case
	Problem   *problem          // decoded problem document, if any
	Principal *Principal        // what the handler behind the middleware saw
}

// echoPrincipal answers 200 with the request's principal as JSON.
var echoPrincipal = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		http.Error(w, "no principal", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(p)
})

// do sends r to h and returns the answer, reading the headers named.
func do(t *testing.T, h http.Handler, r *http.Request, headers ...string) answer {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := w.Result()
	body, _ := io.ReadAll(res.Body)
	got := answer{Status: res.StatusCode, Header: map[string]string{}}
	for _, k := range headers {
		got.Header[k] = res.Header.Get(k)
	}
	switch res.Header.Get("Content-Type") {
	case "application/problem+json":
		got.Problem = &problem{}
		if err := json.Unmarshal(body, got.Problem); err != nil {
			t.Fatalf("decoding problem %s: %v", body, err)
		}
	case "application/json":
		var p struct {
			Principal
			Role string `json:"role"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("decoding principal %s: %v", body, err)
		}
		p.Principal.Role = roleNamed(t, p.Role)
		got.Principal = &p.Principal
	}
	return got
}

func roleNamed(t *testing.T, name string) Role {
	for r := RoleNone; r <= RoleAdmin; r++ {
		if r.String() == name {
			return r
		}
	}
	t.Fatalf("unknown role %q", name)
	return RoleNone
}

func TestMiddleware(t *testing.T) {
	keys := newJWKS(t, ecKey(), rsaKey())
	var rejected []int
	cfg := Config{Mode: ModeOIDC, OIDCAudience: oidcAud, JWKSURL: keys.URL, Policy: mustPolicy(t, testPolicy),
		OnReject: func(_ *http.Request, status int, _ error) { rejected = append(rejected, status) }}
	h := newAuthenticator(t, cfg, newClock()).Middleware(echoPrincipal)
	bearer := func(email string, edit func(map[string]any)) string {
		return "Bearer " + mint(t, rsaKey(), googleClaims(email, oidcAud, edit))
	}
	const path = "/api/v1/jobs"
	tests := []struct {
		name string
		auth string
		want answer
	}{
		{name: "admin", auth: bearer("alice@acme.example", nil), want: answer{Status: 200, Header: map[string]string{"WWW-Authenticate": ""},
			Principal: &Principal{Email: "alice@acme.example", Role: RoleAdmin, ShowQueries: true, Method: ModeOIDC, Expires: t0.Add(time.Hour)}}},
		{name: "no credentials", want: answer{Status: 401, Header: map[string]string{"WWW-Authenticate": `Bearer realm="bqobserver"`},
			Problem: &problem{Type: "about:blank", Title: "Unauthorized", Status: 401, Instance: path,
				Detail: "unauthenticated: no credentials: send a Google-signed ID token as Authorization: Bearer"}}},
		{name: "wrong audience", auth: bearer("alice@acme.example", set("aud", "https://elsewhere.example")),
			want: answer{Status: 401, Header: map[string]string{"WWW-Authenticate": `Bearer realm="bqobserver", error="invalid_token"`},
				Problem: &problem{Type: "about:blank", Title: "Unauthorized", Status: 401, Instance: path,
					Detail: "unauthenticated: token is for another audience"}}},
		{name: "no role", auth: bearer("mallory@evil.example", nil), want: answer{Status: 403, Header: map[string]string{"WWW-Authenticate": ""},
			Problem: &problem{Type: "about:blank", Title: "Forbidden", Status: 403, Instance: path,
				Detail: "forbidden: mallory@evil.example has no role in the access policy"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, path, nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			got := do(t, h, r, "WWW-Authenticate")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if diff := cmp.Diff([]int{401, 401, 403}, rejected); diff != "" {
		t.Errorf("OnReject statuses mismatch (-want +got):\n%s", diff)
	}
}

func TestMiddlewareUnavailable(t *testing.T) {
	keys := newJWKS(t, ecKey())
	keys.answer(http.StatusBadGateway)
	h := newAuthenticator(t, Config{Mode: ModeIAP, IAPAudience: iapAud, JWKSURL: keys.URL, Policy: mustPolicy(t, testPolicy)}, newClock()).Middleware(echoPrincipal)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set(iapHeader, mint(t, ecKey(), iapClaims("alice@acme.example", nil)))
	got := do(t, h, r, "Retry-After")
	want := answer{Status: 503, Header: map[string]string{"Retry-After": "60"}, Problem: &problem{Type: "about:blank", Title: "Service Unavailable", Status: 503, Instance: "/",
		Detail: "cannot verify credentials now: no keys to verify tokens (" + keys.URL + "): fetching keys from " + keys.URL + ": 502 Bad Gateway"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer mismatch (-want +got):\n%s", diff)
	}
}

func TestMiddlewareNone(t *testing.T) {
	h := newAuthenticator(t, Config{Mode: ModeNone, ListenAddr: "[::1]:8080"}, newClock()).Middleware(echoPrincipal)
	got := do(t, h, httptest.NewRequest(http.MethodGet, "/", nil))
	want := answer{Status: 200, Header: map[string]string{}, Principal: &Principal{Email: "anonymous", Role: RoleAdmin, ShowQueries: true, Method: ModeNone}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer mismatch (-want +got):\n%s", diff)
	}
}

func TestPushMiddleware(t *testing.T) {
	keys := newJWKS(t, rsaKey())
	var rejected []int
	v, err := NewPushVerifier(PushConfig{Audience: pushAud, ServiceAccount: pushAccount, JWKSURL: keys.URL, Now: newClock().Now,
		OnReject: func(_ *http.Request, status int, _ error) { rejected = append(rejected, status) }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reached := 0
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { reached++; w.WriteHeader(http.StatusNoContent) }))
	tests := []struct {
		name string
		auth string
		want answer
	}{
		{name: "valid", auth: "Bearer " + mint(t, rsaKey(), googleClaims(pushAccount, pushAud, nil)), want: answer{Status: 204, Header: map[string]string{"WWW-Authenticate": ""}}},
		{name: "no token", want: answer{Status: 401, Header: map[string]string{"WWW-Authenticate": `Bearer realm="bqobserver-push"`},
			Problem: &problem{Type: "about:blank", Title: "Unauthorized", Status: 401, Instance: "/push/audit",
				Detail: "unauthenticated: no credentials: send a Google-signed ID token as Authorization: Bearer"}}},
		{name: "another account", auth: "Bearer " + mint(t, rsaKey(), googleClaims("intruder@x.iam.gserviceaccount.com", pushAud, nil)),
			want: answer{Status: 403, Header: map[string]string{"WWW-Authenticate": ""},
				Problem: &problem{Type: "about:blank", Title: "Forbidden", Status: 403, Instance: "/push/audit",
					Detail: "forbidden: push signed as intruder@x.iam.gserviceaccount.com, not as the push service account"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/push/audit", strings.NewReader(`{}`))
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			if diff := cmp.Diff(tt.want, do(t, h, r, "WWW-Authenticate")); diff != "" {
				t.Errorf("answer mismatch (-want +got):\n%s", diff)
			}
		})
	}
	got := struct {
		Reached  int
		Rejected []int
	}{reached, rejected}
	want := struct {
		Reached  int
		Rejected []int
	}{1, []int{401, 403}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}
