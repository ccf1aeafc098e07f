package running

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLinks serves the configured links, and none when there are none.
func TestLinks(t *testing.T) {
	for _, want := range []map[string]string{
		{"history_report": "https://lookerstudio.google.com/reporting/create?r.reportName=x", "history_dataset": "acme.bqobserver"},
		{},
	} {
		p, _ := newProjection(t, nil, t0, Config{Links: Links{HistoryReport: want["history_report"], HistoryDataset: want["history_dataset"]}})
		w := httptest.NewRecorder()
		p.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/links", nil))
		got := map[string]string{}
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusOK {
			t.Fatalf("GET /api/v1/links: %d %s (%v)", w.Code, w.Body, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("links (-want +got):\n%s", diff)
		}
	}
}
