package simulation

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestJobsAPIProjectQPS checks the per-project quota against a clock it
// sets: within one second a project answers ProjectQPS calls and refuses
// the others with rateLimitExceeded, while another project has its own
// quota; the next second starts afresh.
func TestJobsAPIProjectQPS(t *testing.T) {
	org, err := New(Config{Seed: 5, Projects: 2, Faults: Faults{ProjectQPS: 3}})
	if err != nil {
		t.Fatal(err)
	}
	api := org.JobsAPI()
	now := time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC)
	api.now = func() time.Time { return now }
	call := func(p string) int {
		w := httptest.NewRecorder()
		api.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/bigquery/v2/projects/"+p+"/jobs?allUsers=true", nil))
		return w.Code
	}
	a, b := org.Projects()[0], org.Projects()[1]
	var got []int
	for _, step := range []struct {
		project string
		advance time.Duration
	}{{a, 0}, {a, 100 * time.Millisecond}, {b, 0}, {a, 100 * time.Millisecond}, {a, 100 * time.Millisecond}, {a, 0}, {a, time.Second}} {
		now = now.Add(step.advance)
		got = append(got, call(step.project))
	}
	want := []int{200, 200, 200, 200, 429, 429, 200}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}
