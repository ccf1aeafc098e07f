package schema

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bq "google.golang.org/api/bigquery/v2"
)

// TestApplyBigQueryRace: another setup (a replica starting at the same
// time) changes the table or view between ApplyBigQuery's reading and its
// update, which BigQuery refuses with 412. ApplyBigQuery reads it again:
// when the other setup made the same change, nothing is left to do and it
// succeeds; when the table keeps changing under it, it gives up after
// updateAttempts with the 412.
func TestApplyBigQueryRace(t *testing.T) {
	month := 30 * 24 * time.Hour
	tests := []struct {
		name string
		part string
		edit func(*bq.Table) // the part as an older build left it
		// other is what another setup does when an update arrives.
		other       func(f *fakeBigQuery, id string, patch []byte)
		wantStatus  int // of ApplyBigQuery's error; 0: none
		wantPatched []string
	}{
		{"the same table update, once", JobVersionsTable,
			func(tb *bq.Table) { tb.TimePartitioning.ExpirationMs = month.Milliseconds() }, sameUpdateOnce(),
			0, []string{JobVersionsTable}},
		{"the same view update, once", JobsRunningView,
			func(tb *bq.Table) { tb.View.Query = "SELECT 1" }, sameUpdateOnce(),
			0, []string{JobsRunningView}},
		{"another change at every update", JobVersionsTable,
			func(tb *bq.Table) { tb.Clustering = nil },
			func(f *fakeBigQuery, id string, _ []byte) { f.tables["d"][id].Etag += "+" },
			http.StatusPreconditionFailed, []string{JobVersionsTable, JobVersionsTable, JobVersionsTable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, f, c := appliedThenEdited(t, tt.part, tt.edit)
			f.beforePatch = func(id string, patch []byte) { tt.other(f, id, patch) }

			err := ApplyBigQuery(t.Context(), c, b)
			if got := httpStatus(err); got != tt.wantStatus || (err != nil) != (tt.wantStatus != 0) {
				t.Errorf("ApplyBigQuery = %v; want status %d", err, tt.wantStatus)
			}
			if diff := cmp.Diff(tt.wantPatched, f.updates()); diff != "" {
				t.Errorf("updates sent (-want +got):\n%s", diff)
			}
			if tt.wantStatus != 0 {
				return
			}
			for _, p := range CheckBigQuery(t.Context(), c, b) {
				if p.Err != nil {
					t.Errorf("after ApplyBigQuery, CheckBigQuery reports %s %s: %v", p.Kind, p.Name, p.Err)
				}
			}
		})
	}
}

// sameUpdateOnce is another setup that sends, just before the first
// update, the same one.
func sameUpdateOnce() func(f *fakeBigQuery, id string, patch []byte) {
	done := false
	return func(f *fakeBigQuery, id string, patch []byte) {
		if !done {
			done = true
			if err := f.merge("d", id, patch); err != nil {
				f.t.Error(err)
			}
		}
	}
}

// TestApplyBigQueryKeepsRequirePartitionFilter: a new partition expiration
// leaves whether queries must filter on the partition as an operator set it.
func TestApplyBigQueryKeepsRequirePartitionFilter(t *testing.T) {
	for _, require := range []bool{true, false} {
		t.Run(fmt.Sprintf("required %v", require), func(t *testing.T) { keepsRequirePartitionFilter(t, require) })
	}
}

func keepsRequirePartitionFilter(t *testing.T, require bool) {
	b := BigQuery{Project: "p", Dataset: "d", Location: "US", PartitionExpiration: 90 * 24 * time.Hour}
	f, c := newFakeBigQuery(t, b.Project, b.Dataset)
	f.applied(BigQuery{Project: "p", Dataset: "d", Location: "US"})
	tb := f.table(b.Dataset, JobVersionsTable)
	tb.RequirePartitionFilter, tb.TimePartitioning.RequirePartitionFilter = require, require
	f.put(b.Dataset, tb)

	if err := ApplyBigQuery(t.Context(), c, b); err != nil {
		t.Fatalf("ApplyBigQuery: %v", err)
	}
	got := f.table(b.Dataset, JobVersionsTable)
	if got.TimePartitioning.ExpirationMs != b.PartitionExpiration.Milliseconds() {
		t.Errorf("partition expiration %d ms, want %v", got.TimePartitioning.ExpirationMs, b.PartitionExpiration)
	}
	if got.RequirePartitionFilter != require || got.TimePartitioning.RequirePartitionFilter != require {
		t.Errorf("require partition filter: table %v, partitioning %v after a new expiration; want both %v as they were",
			got.RequirePartitionFilter, got.TimePartitioning.RequirePartitionFilter, require)
	}
}
