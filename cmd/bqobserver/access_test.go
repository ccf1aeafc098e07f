package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/internal/testutil/tokentest"
)

// The identities of the authenticated service tests.
const (
	iapAudience  = "/projects/123456/global/backendServices/789"
	pushAudience = "https://bqobserver.acme.example/push/audit"
	pushAccount  = "pubsub-push@observer.iam.gserviceaccount.com"
	adminEmail   = "alice@acme.example"
	viewerEmail  = "bob@acme.example"
)

// testPolicy gives alice the admin role and everyone else at acme.example
// the viewer role.
const testPolicy = `roles:
  - role: admin
    members: ["user:alice@acme.example"]
  - role: viewer
    members: ["domain:acme.example"]
`

// writePolicy writes a policy file and returns its path.
func writePolicy(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRunRefusesUnsafeAccess: a configuration that would expose the
// organization's jobs, or that cannot work, stops the service before it
// serves, with a message naming the flags that fix it.
func TestRunRefusesUnsafeAccess(t *testing.T) {
	bad := writePolicy(t, "roles:\n  - role: admin\n    members: [\"group:admins@acme.example\"]\n")
	good := writePolicy(t, testPolicy)
	for _, tc := range []struct {
		name string
		args []string
		want []string // what the message names
	}{
		{"none on every interface", []string{"--http-addr", "0.0.0.0:0"},
			[]string{"--auth=none on --http-addr=0.0.0.0:0", "--auth=iap", "--policy", "--allow-unauthenticated"}},
		{"none on a public name", []string{"--http-addr", "bqobserver.acme.example:8080"},
			[]string{"--auth=none on --http-addr=bqobserver.acme.example:8080", "--allow-unauthenticated"}},
		{"iap without audience or policy", []string{"--auth", "iap"},
			[]string{"--auth=iap needs --iap-audience", "--auth=iap needs --policy"}},
		{"oidc with a bad policy", []string{"--auth", "oidc", "--oidc-audience", "https://x", "--policy", bad},
			[]string{"--policy: ", bad + ":3: "}},
		{"push endpoint unchecked", []string{"--auth", "iap", "--iap-audience", iapAudience, "--policy", good, "--push-endpoint"},
			[]string{"--push-endpoint with --auth=iap needs --push-service-account"}},
		{"pushes of any audience", []string{"--http-addr", ":0", "--auth", "iap", "--iap-audience", iapAudience, "--policy", good, "--push-endpoint", "--push-service-account", pushAccount},
			[]string{"--push-service-account on :0 needs --push-audience"}},
		{"metrics on the main address", []string{"--http-addr", "127.0.0.1:18080", "--metrics-addr", "127.0.0.1:18080"},
			[]string{"--metrics-addr=127.0.0.1:18080 is --http-addr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			args := append([]string{"run", "--no-simulate", "--http-addr", "127.0.0.1:0"}, tc.args...)
			code := runContext(t.Context(), args, strings.NewReader(""), &out, io.Discard, func(string) string { return "" })
			if code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("the message does not say %q:\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String(), "is serving on") {
				t.Error("the service served")
			}
		})
	}
}

// authenticated is a service run behind Identity-Aware Proxy, with the push
// intake checked, a token issuer for both, and metrics on their own address.
type authenticated struct {
	base, metrics string
	iss           *tokentest.Issuer
	stop          func() int
	logged        func() string
}

func runAuthenticated(t *testing.T, extra ...string) *authenticated {
	t.Helper()
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("BIGTABLE_EMULATOR_HOST", "")
	a := &authenticated{iss: tokentest.New(t), metrics: freeAddr(t)}
	args := append([]string{"run", "--http-addr", "127.0.0.1:0", "--no-simulate", "--push-endpoint",
		"--auth", "iap", "--iap-audience", iapAudience, "--policy", writePolicy(t, testPolicy), "--auth-jwks-url", a.iss.JWKSURL,
		"--push-service-account", pushAccount, "--push-audience", pushAudience, "--push-jwks-url", a.iss.JWKSURL, "--metrics-addr", a.metrics}, extra...)
	addr, stop, logged := startRunLogged(t, args...)
	a.base, a.stop, a.logged = "http://"+strings.TrimPrefix(addr, "http://"), stop, logged
	t.Cleanup(func() { stop() })
	waitReady(t, a.base)
	return a
}

// freeAddr returns a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// iap returns the IAP assertion of email for the service.
func (a *authenticated) iap(t *testing.T, email string) string {
	return a.iss.IAP(t, tokentest.Standard(tokentest.IAPIssuer, iapAudience, email))
}

// call sends a request and returns its status, headers and body.
func call(t *testing.T, method, url, body string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// pushBody is a push envelope of the audit entry in fixture name.
func pushBody(t *testing.T, name string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"message": map[string]any{"data": base64.StdEncoding.EncodeToString(fixture(t, name)), "messageId": "m-" + name}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRunAuthenticatedUsers: behind IAP, health checks are open, every
// other endpoint needs a valid assertion of someone the policy names, and
// each role gets what it may.
func TestRunAuthenticatedUsers(t *testing.T) {
	a := runAuthenticated(t)
	admin, viewer := a.iap(t, adminEmail), a.iap(t, viewerEmail)
	expired := tokentest.Standard(tokentest.IAPIssuer, iapAudience, adminEmail)
	expired["iat"], expired["exp"] = time.Now().Add(-3*time.Hour).Unix(), time.Now().Add(-2*time.Hour).Unix()
	otherAudience := a.iss.IAP(t, tokentest.Standard(tokentest.IAPIssuer, "/projects/1/global/backendServices/2", adminEmail))
	const assertion = "X-Goog-Iap-Jwt-Assertion"
	for _, tc := range []struct {
		name, method, path string
		header             []string
		status             int
	}{
		{"health is open", "GET", "/healthz", nil, 200},
		{"readiness is open", "GET", "/readyz", nil, 200},
		{"the list needs a caller", "GET", "/api/v1/jobs", nil, 401},
		{"the page needs a caller", "GET", "/", nil, 401},
		{"the 2019 endpoint needs a caller", "GET", "/_ah/get-handlers/v1/jobs", nil, 401},
		{"an expired assertion", "GET", "/api/v1/jobs", []string{assertion, a.iss.IAP(t, expired)}, 401},
		{"an assertion for another audience", "GET", "/api/v1/jobs", []string{assertion, otherAudience}, 401},
		{"an ID token is no IAP assertion", "GET", "/api/v1/jobs", []string{assertion, a.iss.ID(t, tokentest.Standard(tokentest.GoogleIssuer, iapAudience, adminEmail))}, 401},
		{"someone the policy does not name", "GET", "/api/v1/jobs", []string{assertion, a.iap(t, "mallory@evil.example")}, 403},
		{"a viewer lists", "GET", "/api/v1/jobs", []string{assertion, viewer}, 200},
		{"an admin lists", "GET", "/api/v1/jobs", []string{assertion, admin}, 200},
		{"an admin loads the page", "GET", "/", []string{assertion, admin}, 200},
		{"a viewer may not cancel", "POST", "/api/v1/jobs/p/US/j:cancel", []string{assertion, viewer, "Content-Type", "application/json"}, 403},
		{"a cross-site cancel", "POST", "/api/v1/jobs/p/US/j:cancel", []string{assertion, admin, "Content-Type", "application/json",
			"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 403},
		{"a form-encoded cancel", "POST", "/api/v1/jobs/p/US/j:cancel", []string{assertion, admin, "Content-Type", "application/x-www-form-urlencoded"}, 415},
		{"an admin cancels an unknown job", "POST", "/api/v1/jobs/p/US/j:cancel", []string{assertion, admin, "Content-Type", "application/json"}, 404},
		{"a method the list does not serve", "DELETE", "/api/v1/jobs", []string{assertion, admin, "Content-Type", "application/json"}, 405},
		{"the main address serves no metrics", "GET", "/metrics", []string{assertion, admin}, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := call(t, tc.method, a.base+tc.path, "", tc.header...)
			if status != tc.status {
				t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, status, body, tc.status)
			}
			if status >= 400 && h.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s %s: a refusal as %s, want a problem document", tc.method, tc.path, h.Get("Content-Type"))
			}
			if status == 401 && h.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: 401 without WWW-Authenticate", tc.method, tc.path)
			}
		})
	}
	t.Run("readiness tells more to callers who see every job", func(t *testing.T) {
		_, _, open := call(t, "GET", a.base+"/readyz", "")
		_, _, full := call(t, "GET", a.base+"/readyz", "", assertion, viewer)
		_, _, forged := call(t, "GET", a.base+"/readyz", "", assertion, a.iss.IAP(t, expired))
		if strings.Contains(open, `"jobs"`) || strings.Contains(forged, `"jobs"`) || !strings.Contains(full, `"jobs"`) {
			t.Errorf("/readyz: anonymous %s, expired assertion %s, viewer %s; want the job count for the viewer alone", open, forged, full)
		}
	})
	t.Run("who am I", func(t *testing.T) {
		_, _, body := call(t, "GET", a.base+"/api/v1/me", "", assertion, viewer)
		var me map[string]any
		if err := json.Unmarshal([]byte(body), &me); err != nil {
			t.Fatal(err)
		}
		delete(me, "expires")
		want := map[string]any{"email": viewerEmail, "role": "viewer", "show_queries": false, "method": "iap", "can_cancel": false}
		if diff := cmp.Diff(want, me); diff != "" {
			t.Errorf("/api/v1/me (-want +got):\n%s", diff)
		}
	})
	t.Run("metrics on their own address", func(t *testing.T) {
		status, _, body := call(t, "GET", "http://"+a.metrics+"/metrics", "")
		if status != 200 || !strings.Contains(body, "go_goroutines") {
			t.Errorf("GET /metrics on --metrics-addr: %d, want 200 with the service's metrics", status)
		}
	})
}

// push sends a push body with the given headers and returns the status.
func (a *authenticated) push(t *testing.T, body string, header ...string) int {
	t.Helper()
	status, _, _ := call(t, "POST", a.base+"/push/audit", body, header...)
	return status
}

// TestPushKeysAreGoogles: pushes are verified with the push key set,
// Google's by default, not with the users' (another OIDC issuer's, or
// IAP's): a push signed by the users' issuer is refused, one signed with
// the push keys accepted.
func TestPushKeysAreGoogles(t *testing.T) {
	google := tokentest.New(t)
	a := runAuthenticated(t, "--push-jwks-url", google.JWKSURL)
	body := pushBody(t, "v1-insert-query-running.json")
	claims := tokentest.Standard(tokentest.GoogleIssuer, pushAudience, pushAccount)
	for _, tc := range []struct {
		name   string
		by     *tokentest.Issuer
		status int
	}{
		{"signed with the users' keys", a.iss, 401},
		{"signed with Google's keys", google, 204},
	} {
		if got := a.push(t, body, "Content-Type", "application/json", "Authorization", "Bearer "+tc.by.ID(t, claims)); got != tc.status {
			t.Errorf("a push %s answered %d, want %d", tc.name, got, tc.status)
		}
	}
}

// TestRunAuthenticatedPushes: a push is ingested only with the token
// Pub/Sub attaches for the push audience, signed as the push service
// account, and declared as JSON; every refusal is counted.
func TestRunAuthenticatedPushes(t *testing.T) {
	a := runAuthenticated(t)
	body := pushBody(t, "v1-insert-query-running.json")
	bearer := func(c tokentest.Claims) string { return "Bearer " + a.iss.ID(t, c) }
	unverified := tokentest.Standard(tokentest.GoogleIssuer, pushAudience, pushAccount)
	unverified["email_verified"] = false
	signed := bearer(tokentest.Standard(tokentest.GoogleIssuer, pushAudience, pushAccount))
	for _, tc := range []struct {
		name   string
		header []string
		status int
	}{
		{"no token", []string{"Content-Type", "application/json"}, 401},
		{"another audience", []string{"Content-Type", "application/json", "Authorization", bearer(tokentest.Standard(tokentest.GoogleIssuer, "https://other.example/push/audit", pushAccount))}, 401},
		{"another issuer", []string{"Content-Type", "application/json", "Authorization", bearer(tokentest.Standard("https://evil.example", pushAudience, pushAccount))}, 401},
		{"another service account", []string{"Content-Type", "application/json", "Authorization", bearer(tokentest.Standard(tokentest.GoogleIssuer, pushAudience, "intruder@evil.iam.gserviceaccount.com"))}, 403},
		{"an unverified email", []string{"Content-Type", "application/json", "Authorization", bearer(unverified)}, 403},
		{"text/plain", []string{"Content-Type", "text/plain", "Authorization", signed}, 415},
		{"no content type", []string{"Authorization", signed}, 415},
		{"a cross-origin text/plain push", []string{"Content-Type", "text/plain", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 403},
		{"a cross-origin JSON push with the token", []string{"Content-Type", "application/json", "Authorization", signed, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 403},
		{"signed", []string{"Content-Type", "application/json", "Authorization", signed}, 204},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.push(t, body, tc.header...); got != tc.status {
				t.Errorf("push answered %d, want %d", got, tc.status)
			}
		})
	}
	_, _, metrics := call(t, "GET", "http://"+a.metrics+"/metrics", "")
	for _, want := range []string{
		`bqobserver_ingest_push_refused_total{status="401"} 3`, `bqobserver_ingest_push_refused_total{status="403"} 4`,
		`bqobserver_ingest_push_refused_total{status="415"} 2`, `bqobserver_ingest_received_total{intake="push"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The pushed job is listed; a viewer reads it without its query text.
	const job = "/api/v1/jobs/acme-analytics/US/client-chosen-id-7"
	assertion := "X-Goog-Iap-Jwt-Assertion"
	waitUntil(t, "the pushed job to be listed", func() bool {
		status, _, _ := call(t, "GET", a.base+job, "", assertion, a.iap(t, adminEmail))
		return status == 200
	})
	_, _, asAdmin := call(t, "GET", a.base+job, "", assertion, a.iap(t, adminEmail))
	_, _, asViewer := call(t, "GET", a.base+job, "", assertion, a.iap(t, viewerEmail))
	if !strings.Contains(asAdmin, "acme-analytics.sales.orders") {
		t.Errorf("the admin's detail lacks the query: %s", asAdmin)
	}
	if strings.Contains(asViewer, "acme-analytics.sales.orders") || !strings.Contains(asViewer, `"query_hidden":true`) {
		t.Errorf("the viewer's detail shows the query or does not say it is hidden: %s", asViewer)
	}
}

// TestRunPushesToTheirURL: without --push-audience, a push's token must be
// for the push URL the request names, and pushes refused for other hosts,
// however many, do not keep Pub/Sub's signed push from being ingested.
func TestRunPushesToTheirURL(t *testing.T) {
	a := runAuthenticated(t, "--push-audience=")
	body := pushBody(t, "v1-insert-query-running.json")
	push := func(host, audience string) int {
		req, err := http.NewRequest("POST", a.base+"/push/audit", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+a.iss.ID(t, tokentest.Standard(tokentest.GoogleIssuer, audience, pushAccount)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 8 {
		host := fmt.Sprintf("intruder-%d.example", i)
		if got := push(host, pushAudience); got != http.StatusUnauthorized {
			t.Fatalf("a push to %s with a token for %s answered %d, want 401", host, pushAudience, got)
		}
	}
	if got := push("bqobserver.acme.example", pushAudience); got != http.StatusNoContent {
		t.Errorf("Pub/Sub's push after the refused ones answered %d, want 204", got)
	}
}

// TestPushUnderSlowBodies: 600 connections sending a push body one byte a
// second, each with a valid token, do not keep a signed push from being
// ingested within a second.
func TestPushUnderSlowBodies(t *testing.T) {
	a := runAuthenticated(t)
	token := "Bearer " + a.iss.Push(t, pushAudience, pushAccount)
	host := strings.TrimPrefix(a.base, "http://")
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel() // before the wait: ends the slow senders
	for range 600 {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /push/audit HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n", host, token)
		wg.Go(func() {
			defer conn.Close()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond) // every slow push is being read
	start := time.Now()
	status := a.push(t, pushBody(t, "v1-insert-query-running.json"), "Content-Type", "application/json", "Authorization", token)
	took := time.Since(start)
	if status != http.StatusNoContent || took > time.Second {
		t.Errorf("a signed push beside 600 slow ones: %d after %v, want 204 within a second", status, took)
	}
	t.Logf("ingested in %v beside 600 slow pushes", took)
}

// TestRunOperatorEndpointsByRole: on the main address, the metrics (whose
// series name projects and count the organization's work) are for callers
// who see every job, and the profiles for admins; an own caller gets
// neither.
func TestRunOperatorEndpointsByRole(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("BIGTABLE_EMULATOR_HOST", "")
	iss := tokentest.New(t)
	policy := writePolicy(t, testPolicy+`  - role: own
    members: ["user:carol@partner.example"]
`)
	addr, stop, _ := startRunLogged(t, "run", "--http-addr", "127.0.0.1:0", "--no-simulate",
		"--auth", "iap", "--iap-audience", iapAudience, "--policy", policy, "--auth-jwks-url", iss.JWKSURL, "--pprof")
	t.Cleanup(func() { stop() })
	base := "http://" + strings.TrimPrefix(addr, "http://")
	waitReady(t, base)
	token := func(email string) string {
		return iss.IAP(t, tokentest.Standard(tokentest.IAPIssuer, iapAudience, email))
	}
	admin, viewer, own := token(adminEmail), token(viewerEmail), token("carol@partner.example")
	for _, tc := range []struct {
		who, token, path string
		status           int
	}{
		{"own", own, "/metrics", 403},
		{"own", own, "/debug/pprof/cmdline", 403},
		{"own", own, "/debug/pprof/goroutine?debug=2", 403},
		{"own", own, "/api/v1/jobs", 200},
		{"viewer", viewer, "/metrics", 200},
		{"viewer", viewer, "/debug/pprof/cmdline", 403},
		{"admin", admin, "/metrics", 200},
		{"admin", admin, "/debug/pprof/cmdline", 200},
		{"nobody", "", "/metrics", 401},
	} {
		var header []string
		if tc.token != "" {
			header = []string{"X-Goog-Iap-Jwt-Assertion", tc.token}
		}
		status, _, body := call(t, "GET", base+tc.path, "", header...)
		if status != tc.status {
			t.Errorf("GET %s as %s: %d (%.80s), want %d", tc.path, tc.who, status, body, tc.status)
		}
	}
}

// TestSimulationFromThisMachine: with users authenticated, the simulated
// jobs API, which takes no credentials, answers only this machine: a
// loopback peer, or the service calling itself on the address it listens
// on.
func TestSimulationFromThisMachine(t *testing.T) {
	h := fromThisMachine(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	for _, tc := range []struct {
		peer, local string
		want        int
	}{
		{"127.0.0.1:5555", "127.0.0.1:8080", 200},
		{"[::1]:5555", "[::1]:8080", 200},
		{"10.0.0.5:4444", "10.0.0.5:8080", 200},
		{"203.0.113.9:1234", "10.0.0.5:8080", 403},
		{"10.0.0.6:1234", "10.0.0.5:8080", 403},
	} {
		r := httptest.NewRequest("GET", "/simulation/bigquery/v2/projects/p/jobs", nil)
		r.RemoteAddr = tc.peer
		local, err := net.ResolveTCPAddr("tcp", tc.local)
		if err != nil {
			t.Fatal(err)
		}
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, local))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != tc.want {
			t.Errorf("a call from %s on %s answered %d, want %d", tc.peer, tc.local, rec.Code, tc.want)
		}
	}
}
