package access

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWriteGuard(t *testing.T) {
	g, err := NewWriteGuard([]string{"https://tools.acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	const path = "/api/v1/jobs/p/US/j1:cancel"
	forbidden := func(method string) answer {
		return answer{Status: 403, Header: map[string]string{}, Problem: &problem{Type: "about:blank", Title: "Forbidden", Status: 403, Instance: path,
			Detail: "forbidden: a " + method + " request must come from this service's own origin or a trusted one"}}
	}
	unsupported := func(method string) answer {
		return answer{Status: 415, Header: map[string]string{}, Problem: &problem{Type: "about:blank", Title: "Unsupported Media Type", Status: 415, Instance: path,
			Detail: "unsupported media type: a " + method + " request must have Content-Type: application/json"}}
	}
	accepted := answer{Status: 202, Header: map[string]string{}}
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		want    answer
	}{
		{name: "same origin JSON", method: "POST", headers: map[string]string{"Origin": "https://obs.acme.example", "Content-Type": "application/json"}, want: accepted},
		{name: "JSON with charset", method: "POST", headers: map[string]string{"Origin": "https://obs.acme.example", "Content-Type": "application/json; charset=utf-8"}, want: accepted},
		{name: "no origin (a script)", method: "POST", headers: map[string]string{"Content-Type": "application/json"}, want: accepted},
		{name: "Sec-Fetch-Site same-origin", method: "POST", headers: map[string]string{"Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}, want: accepted},
		{name: "trusted origin", method: "POST", headers: map[string]string{"Origin": "https://tools.acme.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, want: accepted},
		{name: "safe method passes", method: "GET", headers: map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, want: accepted},
		{name: "another origin", method: "POST", headers: map[string]string{"Origin": "https://evil.example", "Content-Type": "application/json"},
			want: forbidden("POST")},
		{name: "cross-site by Sec-Fetch-Site", method: "POST", headers: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example", "Content-Type": "application/json"},
			want: forbidden("POST")},
		{name: "same-site is not same-origin", method: "DELETE", headers: map[string]string{"Sec-Fetch-Site": "same-site", "Content-Type": "application/json"},
			want: forbidden("DELETE")},
		{name: "null origin", method: "POST", headers: map[string]string{"Origin": "null", "Content-Type": "application/json"},
			want: forbidden("POST")},
		{name: "cross-origin text/plain", method: "POST", headers: map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain"},
			want: forbidden("POST")},
		{name: "same-origin text/plain", method: "POST", headers: map[string]string{"Origin": "https://obs.acme.example", "Content-Type": "text/plain"}, want: unsupported("POST")},
		{name: "form", method: "POST", headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, want: unsupported("POST")},
		{name: "no content type", method: "PUT", want: unsupported("PUT")},
		{name: "JSON look-alike", method: "POST", headers: map[string]string{"Content-Type": "application/json-seq"}, want: unsupported("POST")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "https://obs.acme.example"+path, strings.NewReader(`{"reason":"runaway"}`))
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			if diff := cmp.Diff(tt.want, do(t, h, r)); diff != "" {
				t.Errorf("answer mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewWriteGuardBadOrigin(t *testing.T) {
	_, err := NewWriteGuard([]string{"tools.acme.example"})
	if err == nil || !strings.HasPrefix(err.Error(), "--allowed-origins: ") {
		t.Errorf("NewWriteGuard() error = %v, want one naming --allowed-origins", err)
	}
}
