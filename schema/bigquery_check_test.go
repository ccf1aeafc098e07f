package schema

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bq "google.golang.org/api/bigquery/v2"
)

// TestCheckBigQueryAgreesWithApply changes one part of the history as
// setup leaves it and checks that CheckBigQuery reports what ApplyBigQuery
// then does: nothing (the part is as setup leaves it), a change
// (ErrHistoryNotApplied, saying what differs; afterwards the check finds
// nothing), or a refusal (the same error as ApplyBigQuery's).
func TestCheckBigQueryAgreesWithApply(t *testing.T) {
	const (
		ok         = "as setup leaves it"
		notApplied = "not applied"
		refused    = "refused"
	)
	month := 30 * 24 * time.Hour
	tests := []struct {
		name    string
		part    string // the table or view edited
		edit    func(*bq.Table)
		want    string // ok, notApplied or refused
		wantSay string // in the check's error
	}{
		{"as setup leaves it", JobVersionsTable, func(*bq.Table) {}, ok, ""},
		{"not partitioned", JobVersionsTable, func(tb *bq.Table) { tb.TimePartitioning = nil },
			refused, "not partitioned by day of creation_time"},
		{"partitioned by ingestion time", JobVersionsTable, func(tb *bq.Table) { tb.TimePartitioning.Field = "" },
			refused, "not partitioned by day of creation_time"},
		{"partitioned by hour", JobVersionsTable, func(tb *bq.Table) { tb.TimePartitioning.Type = "HOUR" },
			refused, "not partitioned by day of creation_time"},
		{"a column of another type", JobVersionsTable, func(tb *bq.Table) { tb.Schema.Fields[0].Type = "INTEGER" },
			refused, "cannot be changed in place"},
		{"partitions that expire", JobVersionsTable, func(tb *bq.Table) { tb.TimePartitioning.ExpirationMs = month.Milliseconds() },
			notApplied, "its partitions expire after 720h0m0s, not never"},
		{"clustered otherwise", JobVersionsTable, func(tb *bq.Table) { tb.Clustering.Fields = []string{"project_id"} },
			notApplied, "it is clustered by [project_id], not [project_id user_email statement_type state]"},
		{"not clustered", JobVersionsTable, func(tb *bq.Table) { tb.Clustering = nil },
			notApplied, "it is clustered by [], not"},
		{"a column missing", JobVersionsTable, func(tb *bq.Table) { tb.Schema.Fields = tb.Schema.Fields[:len(tb.Schema.Fields)-1] },
			notApplied, "it lacks columns of this version's schema"},
		{"two differences", JobVersionsTable, func(tb *bq.Table) { tb.Clustering = nil; tb.TimePartitioning.ExpirationMs = 1000 },
			notApplied, "its partitions expire after 1s, not never; it is clustered by [], not"},
		{"a view's older query", JobsView, func(tb *bq.Table) { tb.View.Query = "SELECT 1" },
			notApplied, "the view's query is not this version's"},
		{"a view's description", JobsDailyView, func(tb *bq.Table) { tb.Description = "" },
			notApplied, "the view's description is not this version's"},
		{"a table for a view", JobsView, func(tb *bq.Table) { tb.Type, tb.View = "TABLE", nil },
			refused, "not a view"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, f, c := appliedThenEdited(t, tt.part, tt.edit)

			checked := partErr(t, CheckBigQuery(t.Context(), c, b), tt.part)
			applyErr := ApplyBigQuery(t.Context(), c, b)
			got := ok
			switch {
			case errors.Is(checked, ErrHistoryNotApplied):
				got = notApplied
			case checked != nil:
				got = refused
			}
			if got != tt.want || !strings.Contains(errText(checked), tt.wantSay) {
				t.Fatalf("CheckBigQuery reports %s %s: %v; want %s, saying %q", tt.part, got, checked, tt.want, tt.wantSay)
			}
			switch tt.want {
			case refused:
				if applyErr == nil || !strings.Contains(applyErr.Error(), checked.Error()) {
					t.Errorf("ApplyBigQuery = %v; want the check's error, %v", applyErr, checked)
				}
			case notApplied, ok:
				if applyErr != nil {
					t.Fatalf("ApplyBigQuery: %v", applyErr)
				}
				if wantPatched := tt.want == notApplied; slices.Contains(f.updates(), tt.part) != wantPatched {
					t.Errorf("ApplyBigQuery updated %v; want %s updated: %v", f.updates(), tt.part, wantPatched)
				}
				for _, p := range CheckBigQuery(t.Context(), c, b) {
					if p.Err != nil {
						t.Errorf("after ApplyBigQuery, CheckBigQuery reports %s %s: %v", p.Kind, p.Name, p.Err)
					}
				}
			}
		})
	}
}

// partErr returns the error CheckBigQuery reported for the part named
// name, and that every other part is as setup leaves it.
func partErr(t *testing.T, parts []HistoryPart, name string) error {
	t.Helper()
	var names []string
	var err error
	for _, p := range parts {
		names = append(names, p.Name)
		switch {
		case p.Name == name:
			err = p.Err
		case p.Err != nil:
			t.Errorf("CheckBigQuery reports %s %s: %v; want it as setup leaves it", p.Kind, p.Name, p.Err)
		}
	}
	want := []string{"p.d", JobVersionsTable, JobsView, JobsRunningView, JobsDailyView}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("CheckBigQuery's parts (-want +got):\n%s", diff)
	}
	return err
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
