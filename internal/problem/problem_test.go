package problem

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFallback: what no route of a mux takes is 405 with Allow when another
// method of its path is served, 404 otherwise, both as problem documents.
func TestFallback(t *testing.T) {
	mux := http.NewServeMux()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("GET /items", ok)
	mux.Handle("POST /items/{id}", ok)
	mux.Handle("/", Fallback(mux, "no such thing"))
	type answer struct {
		Status      int
		Allow       string
		ContentType string
		Document    Document
	}
	for _, tc := range []struct {
		method, path string
		want         answer
	}{
		{"GET", "/items", answer{Status: 204}},
		{"DELETE", "/items", answer{405, "GET, HEAD", ContentType,
			Document{"about:blank", "Method Not Allowed", 405, "DELETE is not allowed here; allowed: GET, HEAD", "/items"}}},
		{"GET", "/items/7", answer{405, "POST", ContentType,
			Document{"about:blank", "Method Not Allowed", 405, "GET is not allowed here; allowed: POST", "/items/7"}}},
		{"GET", "/nothing", answer{404, "", ContentType, Document{"about:blank", "Not Found", 404, "no such thing", "/nothing"}}},
	} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		got := answer{Status: w.Code, Allow: w.Header().Get("Allow")}
		if w.Code != http.StatusNoContent {
			got.ContentType = w.Header().Get("Content-Type")
			if err := json.Unmarshal(w.Body.Bytes(), &got.Document); err != nil {
				t.Errorf("%s %s: %v\n%s", tc.method, tc.path, err, w.Body)
			}
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s %s (-want +got):\n%s", tc.method, tc.path, diff)
		}
	}
}
