package running

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReadyWhileLogUnreachable reports the event log unreachable, missing
// and back: /readyz says the service is degraded, with the reason, while
// the latest check failed, and the list keeps answering from memory.
func TestReadyWhileLogUnreachable(t *testing.T) {
	p, _ := newProjection(t, nil, t0, Config{})
	h := asAdmin(p.Handler())
	type answer struct {
		Readyz int
		Status string
		Error  string
		List   int
	}
	ask := func() answer {
		w := get(t, h, "/readyz")
		var body readyJSON
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("/readyz body %s: %v", w.Body, err)
		}
		return answer{Readyz: w.Code, Status: body.Status, Error: body.EventLog.Error, List: get(t, h, "/api/v1/jobs").Code}
	}
	for _, step := range []struct {
		name   string
		report error
		want   answer
	}{
		{"answers", nil, answer{Readyz: http.StatusOK, Status: readyOK, List: http.StatusOK}},
		{"unreachable", errors.New("reading table bqobserver-events: context deadline exceeded"), answer{
			Readyz: http.StatusOK, Status: readyDegraded, List: http.StatusOK,
			Error: "the event log does not answer: reading table bqobserver-events: context deadline exceeded"}},
		{"its table missing", errors.New("table bqobserver-events is missing"), answer{
			Readyz: http.StatusOK, Status: readyDegraded, List: http.StatusOK,
			Error: "the event log does not answer: table bqobserver-events is missing"}},
		{"answers again", nil, answer{Readyz: http.StatusOK, Status: readyOK, List: http.StatusOK}},
	} {
		p.ReportLog(t.Context(), step.report)
		if diff := cmp.Diff(step.want, ask()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", step.name, diff)
		}
	}
}
