package history

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/golden"
	"github.com/bqobserver/bqobserver/schema"
)

// rowCases are jobs in the shapes a row must hold.
func rowCases() []struct {
	name string
	evs  []events.Event
} {
	load := events.JobKey{Project: "acme-ingest", Location: "europe-west2", JobID: "load_1"}
	return []struct {
		name string
		evs  []events.Event
	}{
		{"query done", queryJob("q1", doneFacts(10<<30), nil)},
		{"query failed", queryJob("q2", doneFacts(10<<20), &events.JobError{Code: "invalidQuery", Message: "Syntax error at [1:8]"})},
		{"query running", queryJob("q3", events.Facts{}, nil)[:2]},
		{"load with a table name of another shape", []events.Event{{
			ID: "l-1", Kind: events.KindCompleted, Job: load, Time: t0, State: events.StateDone,
			Facts: events.Facts{JobType: events.JobTypeLoad, Reservation: "default-pipeline", DestinationTable: "raw_events",
				SourceURIs: []string{"gs://acme/raw/1.json", "gs://acme/raw/2.json"}, CreateTime: t0.Add(-time.Minute),
				StartTime: t0.Add(-50 * time.Second), EndTime: t0, OutputRows: events.Int64(1200)},
			Source: events.Source{Format: "api"}}}},
	}
}

// TestRowsGolden converts jobs into rows of job_versions and compares their
// column values with the golden file.
func TestRowsGolden(t *testing.T) {
	v, err := newVersioner(Config{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Row{}
	for _, c := range rowCases() {
		j, d := v.version(c.evs[0].Job, c.evs)
		got[c.name] = values(v.rows.message(&j, &d), v.rows.schema)
	}
	golden.JSON(t, filepath.Join("testdata", "rows.golden.json"), got)
}

// TestRowsDecodeWithTheDescriptorSent decodes each encoded row with the
// self-contained descriptor the writer sends, as BigQuery does: it reads
// back the row that was built.
func TestRowsDecodeWithTheDescriptorSent(t *testing.T) {
	v, err := newVersioner(Config{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	md, err := messageDescriptor(v.rows.proto)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rowCases() {
		j, d := v.version(c.evs[0].Job, c.evs)
		b, err := v.rows.encode(&j, &d)
		if err != nil {
			t.Fatal(err)
		}
		m := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(b, m); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := values(v.rows.message(&j, &d), v.rows.schema)
		if diff := cmp.Diff(want, values(m, v.rows.schema)); diff != "" {
			t.Errorf("%s: decoded row (-built +decoded):\n%s", c.name, diff)
		}
	}
}

// TestNewRowTypeRefusesAnotherSchema: the writer's rows follow the table
// schema of this build, so a schema of other columns, or in another order,
// is refused.
func TestNewRowTypeRefusesAnotherSchema(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(bigquery.Schema) bigquery.Schema
		wants string
	}{
		{"a column less", func(s bigquery.Schema) bigquery.Schema { return s[:len(s)-1] }, fmt.Sprintf("has %d columns", len(columns)-1)},
		{"two columns swapped", func(s bigquery.Schema) bigquery.Schema { s[1], s[2] = s[2], s[1]; return s }, "column 1 of the table schema is job_id"},
		{"an unknown type", func(s bigquery.Schema) bigquery.Schema { s[0].Type = "VECTOR"; return s }, "unknown type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newRowType(tt.edit(slices.Clone(schema.JobVersions())))
			if err == nil || !strings.Contains(err.Error(), tt.wants) {
				t.Errorf("newRowType() = %v; want an error saying %q", err, tt.wants)
			}
		})
	}
}

// TestSame compares values as Check does.
func TestSame(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	tests := []struct {
		name string
		a, b any
		want bool
	}{
		{"equal strings", "a", "a", true},
		{"different strings", "a", "b", false},
		{"floats within the tolerance", 0.1 + 0.2, 0.3, true},
		{"floats beyond it", 1.0, 1.001, false},
		{"the same instant", at, at.In(time.FixedZone("x", 3600)), true},
		{"another instant", at, at.Add(time.Microsecond), false},
		{"records", map[string]any{"k": "v"}, map[string]any{"k": "v"}, true},
		{"records differing", map[string]any{"k": "v"}, map[string]any{"k": "w"}, false},
		{"lists", []any{int64(1), "x"}, []any{int64(1), "x"}, true},
		{"lists of another length", []any{int64(1)}, []any{int64(1), int64(2)}, false},
		{"NULL and a value", nil, "x", false},
		{"a number and a string", int64(1), "1", false},
	}
	for _, tt := range tests {
		if got := same(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: same(%v, %v) = %v, want %v", tt.name, tt.a, tt.b, got, tt.want)
		}
	}
}
