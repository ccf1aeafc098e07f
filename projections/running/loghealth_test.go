package running

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReadyWhileLogUnreachable reports the event log unreachable, missing
// and back: /readyz answers 503 with Retry-After and the reason while the
// latest check failed, and the list keeps answering from memory.
func TestReadyWhileLogUnreachable(t *testing.T) {
	p, _ := newProjection(t, nil, t0, Config{})
	h := asAdmin(p.Handler())
	type answer struct {
		Readyz     int
		RetryAfter string
		Detail     string
		List       int
	}
	ask := func() answer {
		w := get(t, h, "/readyz")
		var body struct{ Detail string }
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("/readyz body %s: %v", w.Body, err)
		}
		return answer{Readyz: w.Code, RetryAfter: w.Header().Get("Retry-After"), Detail: body.Detail, List: get(t, h, "/api/v1/jobs").Code}
	}
	for _, step := range []struct {
		name   string
		report error
		want   answer
	}{
		{"answers", nil, answer{Readyz: http.StatusOK, List: http.StatusOK}},
		{"unreachable", errors.New("reading table bqobserver-events: context deadline exceeded"), answer{
			Readyz: http.StatusServiceUnavailable, RetryAfter: "5", List: http.StatusOK,
			Detail: "the event log does not answer: reading table bqobserver-events: context deadline exceeded"}},
		{"its table missing", errors.New("table bqobserver-events is missing"), answer{
			Readyz: http.StatusServiceUnavailable, RetryAfter: "5", List: http.StatusOK,
			Detail: "the event log does not answer: table bqobserver-events is missing"}},
		{"answers again", nil, answer{Readyz: http.StatusOK, List: http.StatusOK}},
	} {
		p.ReportLog(t.Context(), step.report)
		if diff := cmp.Diff(step.want, ask()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", step.name, diff)
		}
	}
}
