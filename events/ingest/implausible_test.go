package ingest

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestImplausibleValuesDropped pushes an entry whose statistics and times
// cannot be true: it is appended, not dead-lettered, without those values,
// and each dropped value is counted by field and reason.
func TestImplausibleValuesDropped(t *testing.T) {
	entry, err := os.ReadFile("../auditlog/testdata/implausible-statistics.json")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOpts{appendTimeout: 5 * time.Second})
	if got := push(t, h.pipe.PushHandler(), http.MethodPost, envelope(t, entry, 1)); got != http.StatusNoContent {
		t.Fatalf("push answered %d, want 204", got)
	}
	logged := h.logged()
	if len(logged) != 1 {
		t.Fatalf("the log holds %d events, want the entry's one", len(logged))
	}
	e := logged[0]
	got := map[string]any{"slot_ms": e.SlotMs, "bytes_processed": e.BytesProcessed, "bytes_billed": e.BytesBilled,
		"output_rows": e.OutputRows, "create_time": e.CreateTime, "start_time": e.StartTime, "end_time": e.EndTime.IsZero()}
	want := map[string]any{"slot_ms": (*int64)(nil), "bytes_processed": (*int64)(nil), "bytes_billed": (*int64)(nil),
		"output_rows": (*int64)(nil), "create_time": time.Time{}, "start_time": time.Time{}, "end_time": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values of the appended event (-want +got):\n%s", diff)
	}
	counts := map[[2]string]float64{}
	for _, fr := range [][2]string{{"slot_ms", "negative"}, {"bytes_processed", "negative"}, {"bytes_billed", "too_large"},
		{"output_rows", "negative"}, {"create_time", "too_early"}, {"start_time", "in_the_future"}} {
		counts[fr] = testutil.ToFloat64(h.pipe.implausible.dropped.WithLabelValues(fr[0], fr[1]))
	}
	wantCounts := map[[2]string]float64{{"slot_ms", "negative"}: 1, {"bytes_processed", "negative"}: 1, {"bytes_billed", "too_large"}: 1,
		{"output_rows", "negative"}: 1, {"create_time", "too_early"}: 1, {"start_time", "in_the_future"}: 1}
	if diff := cmp.Diff(wantCounts, counts); diff != "" {
		t.Errorf("dropped values counted (-want +got):\n%s", diff)
	}
	if n := testutil.CollectAndCount(h.pipe.metrics.deadLettered); n != 0 {
		t.Errorf("%d dead-letter series, want none", n)
	}
}
