package schema

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"cloud.google.com/go/bigquery"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/googleapi"

	"github.com/bqobserver/bqobserver/events/jobfields"
)

// TestJobVersionsFollowsTheFieldTable checks the embedded table schema
// against the field table: every column of jobfields.TableColumns, in order,
// with its type (as the client library names it) and mode.
func TestJobVersionsFollowsTheFieldTable(t *testing.T) {
	libraryType := map[string]bigquery.FieldType{"STRING": bigquery.StringFieldType, "INT64": bigquery.IntegerFieldType,
		"FLOAT64": bigquery.FloatFieldType, "BOOL": bigquery.BooleanFieldType, "TIMESTAMP": bigquery.TimestampFieldType,
		"RECORD": bigquery.RecordFieldType}
	var describe func(cs []jobfields.Column) []string
	describe = func(cs []jobfields.Column) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Name+" "+string(libraryType[c.Type])+" "+c.Mode)
			for _, sub := range describe(c.Fields) {
				out = append(out, c.Name+"."+sub)
			}
		}
		return out
	}
	var got func(s bigquery.Schema) []string
	got = func(s bigquery.Schema) []string {
		var out []string
		for _, f := range s {
			mode := ""
			if f.Required {
				mode = jobfields.Required
			} else if f.Repeated {
				mode = jobfields.Repeated
			}
			out = append(out, f.Name+" "+string(f.Type)+" "+mode)
			for _, sub := range got(f.Schema) {
				out = append(out, f.Name+"."+sub)
			}
		}
		return out
	}
	if diff := cmp.Diff(describe(jobfields.TableColumns()), got(JobVersions())); diff != "" {
		t.Errorf("job_versions.json (-field table +file):\n%s", diff)
	}
}

// TestPartitioningAndClusteringColumns checks that the table has the
// columns it is partitioned and clustered by, of types BigQuery allows.
func TestPartitioningAndClusteringColumns(t *testing.T) {
	types := map[string]bigquery.FieldType{}
	for _, f := range JobVersions() {
		types[f.Name] = f.Type
	}
	if types[PartitionColumn] != bigquery.TimestampFieldType {
		t.Errorf("partition column %s has type %q, want TIMESTAMP", PartitionColumn, types[PartitionColumn])
	}
	for _, c := range ClusteringColumns {
		if types[c] != bigquery.StringFieldType {
			t.Errorf("clustering column %s has type %q, want STRING", c, types[c])
		}
	}
	if len(ClusteringColumns) > 4 {
		t.Errorf("%d clustering columns; BigQuery allows 4", len(ClusteringColumns))
	}
}

func TestPrices(t *testing.T) {
	p := OnDemandPrices()
	if !strings.HasPrefix(p.Source, "https://cloud.google.com/bigquery/pricing") {
		t.Errorf("source %q is not BigQuery's pricing page", p.Source)
	}
	tests := []struct {
		location string
		want     float64
		ok       bool
	}{
		{"US", 6.25, true},
		{"us", 6.25, true},
		{"EU", 6.25, true},
		{"europe-west2", 7.8125, true},
		{"asia-northeast1", 7.50, true},
		{"mars-north1", 0, false},
	}
	for _, tt := range tests {
		got, ok := p.PerTiB(tt.location)
		if got != tt.want || ok != tt.ok {
			t.Errorf("PerTiB(%q) = %v, %v; want %v, %v", tt.location, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParsePricesRefusesIncompleteTables(t *testing.T) {
	for name, doc := range map[string]string{
		"no date":        `{"source": "s", "usd_per_tib": {"US": 6.25}}`,
		"no source":      `{"as_of": "2026-01-01", "usd_per_tib": {"US": 6.25}}`,
		"zero price":     `{"source": "s", "as_of": "2026-01-01", "usd_per_tib": {"US": 0}}`,
		"unknown member": `{"source": "s", "as_of": "2026-01-01", "usd_per_tib": {}, "currency": "EUR"}`,
	} {
		if _, err := parsePrices([]byte(doc)); err == nil {
			t.Errorf("%s: parsePrices(%s) succeeded; want an error", name, doc)
		}
	}
}

func TestViewSQL(t *testing.T) {
	b := BigQuery{Project: "acme-obs", Dataset: "history", Location: "EU"}
	for _, v := range views {
		sql, err := b.ViewSQL(v.name)
		if err != nil {
			t.Fatalf("ViewSQL(%s): %v", v.name, err)
		}
		if strings.Contains(sql, "{{") || !strings.Contains(sql, "`acme-obs.history.") {
			t.Errorf("view %s is not rendered for acme-obs.history:\n%s", v.name, sql)
		}
	}
	if _, err := b.ViewSQL("nope"); err == nil {
		t.Error("ViewSQL(nope) succeeded; want an error")
	}
}

// TestViewsFollowTheTable: every view's query ends with the number of
// job_versions' columns, at every level, so that adding one changes the
// queries and setup sets them again, which refreshes the schema BigQuery
// keeps for a view.
func TestViewsFollowTheTable(t *testing.T) {
	table := JobVersions()
	n := countColumns(table)
	if want := len(table); n <= want {
		t.Fatalf("counted %d columns in job_versions' %d top-level ones and their records", n, want)
	}
	if got := countColumns(append(slices.Clone(table), &bigquery.FieldSchema{Name: "new_column", Type: bigquery.StringFieldType})); got != n+1 {
		t.Errorf("a column added makes %d, want %d", got, n+1)
	}
	b := BigQuery{Project: "acme-obs", Dataset: "history", Location: "EU"}
	for _, v := range views {
		sql, _ := b.ViewSQL(v.name)
		if !strings.HasSuffix(sql, fmt.Sprintf("\n/* job_versions has %d columns: setup sets this query again when it adds one, which refreshes the view's schema. */", n)) {
			t.Errorf("view %s does not end with job_versions' column count:\n%s", v.name, sql)
		}
	}
}

func TestBigQueryValidate(t *testing.T) {
	err := BigQuery{Dataset: "bad-name", PartitionExpiration: -1}.Validate()
	for _, want := range []string{"project is not set", "not a dataset id", "location is not set", "negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; want it to say %q", err, want)
		}
	}
}

// TestMergeSchema checks how an existing table's schema is brought up to
// date: missing columns are appended, at every level of records, a REQUIRED
// one as NULLABLE; a column whose type changed is refused.
func TestMergeSchema(t *testing.T) {
	str := func(name string) *bigquery.FieldSchema {
		return &bigquery.FieldSchema{Name: name, Type: bigquery.StringFieldType}
	}
	rec := func(name string, fs ...*bigquery.FieldSchema) *bigquery.FieldSchema {
		return &bigquery.FieldSchema{Name: name, Type: bigquery.RecordFieldType, Schema: fs}
	}
	required := &bigquery.FieldSchema{Name: "n", Type: bigquery.IntegerFieldType, Required: true}
	nullable := &bigquery.FieldSchema{Name: "n", Type: bigquery.IntegerFieldType}
	tests := []struct {
		name      string
		have      bigquery.Schema
		want      bigquery.Schema
		wantOut   bigquery.Schema
		wantAdded bool
		wantErr   string
	}{
		{"up to date", bigquery.Schema{str("a"), rec("r", str("x"))}, bigquery.Schema{str("a"), rec("r", str("x"))},
			bigquery.Schema{str("a"), rec("r", str("x"))}, false, ""},
		{"a top-level column", bigquery.Schema{str("a")}, bigquery.Schema{str("a"), str("b")},
			bigquery.Schema{str("a"), str("b")}, true, ""},
		{"a column of a record", bigquery.Schema{rec("r", str("x"))}, bigquery.Schema{rec("r", str("x"), str("y"))},
			bigquery.Schema{rec("r", str("x"), str("y"))}, true, ""},
		{"a required column is added nullable", bigquery.Schema{str("a")}, bigquery.Schema{str("a"), required},
			bigquery.Schema{str("a"), nullable}, true, ""},
		{"columns the schema lacks stay", bigquery.Schema{str("a"), str("old")}, bigquery.Schema{str("a")},
			bigquery.Schema{str("a"), str("old")}, false, ""},
		{"a changed type", bigquery.Schema{str("n")}, bigquery.Schema{nullable}, nil, false, "cannot be changed in place"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, added, err := mergeSchema(tt.have, tt.want)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("mergeSchema() error = %v; want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantOut, got); diff != "" || added != tt.wantAdded {
				t.Errorf("mergeSchema() added %v (want %v), schema (-want +got):\n%s", added, tt.wantAdded, diff)
			}
		})
	}
}

func TestTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"a server error", &googleapi.Error{Code: 503}, true},
		{"an internal error in a job", &googleapi.Error{Code: 400, Errors: []googleapi.ErrorItem{{Reason: "jobInternalError"}}}, true},
		{"a rate limit", &googleapi.Error{Code: 403, Errors: []googleapi.ErrorItem{{Reason: "rateLimitExceeded"}}}, true},
		{"wrapped", fmt.Errorf("querying: %w", &googleapi.Error{Code: 500}), true},
		{"a bad query", &googleapi.Error{Code: 400, Errors: []googleapi.ErrorItem{{Reason: "invalidQuery"}}}, false},
		{"no permission", &googleapi.Error{Code: 403, Errors: []googleapi.ErrorItem{{Reason: "accessDenied"}}}, false},
		{"not an API error", errors.New("x"), false},
	}
	for _, tt := range tests {
		if got := Transient(tt.err); got != tt.want {
			t.Errorf("%s: Transient = %v, want %v", tt.name, got, tt.want)
		}
	}
}
