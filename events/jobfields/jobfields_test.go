package jobfields

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/internal/testutil/golden"
)

func TestFieldsAreSound(t *testing.T) {
	if err := Check(Fields); err != nil {
		t.Fatal(err)
	}
}

// TestCheck breaks the table in every way Check looks for.
func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		edit  func([]Field) []Field
		wants string // in the error
	}{
		{"repeated Go name", func(fs []Field) []Field { fs[6].Name = fs[5].Name; return fs }, "share the Go name"},
		{"repeated JSON name", func(fs []Field) []Field { fs[6].JSON = fs[5].JSON; return fs }, "share the JSON name"},
		{"repeated column", func(fs []Field) []Field { fs[6].Column.Name = fs[5].Column.Name; return fs }, "share the column"},
		{"a field's column named as the history's", func(fs []Field) []Field { fs[6].Column.Name = HistoryColumns[0].Column.Name; return fs }, "share the column"},
		{"no doc", func(fs []Field) []Field { fs[6].Doc = ""; return fs }, "a Doc are all needed"},
		{"scope out of order", func(fs []Field) []Field { fs[0], fs[5] = fs[5], fs[0]; return fs }, "Fields lists key, event, fact, derived"},
		{"flag without its text", func(fs []Field) []Field { return slices.Delete(fs, index(fs, "Query"), index(fs, "Query")+1) }, "does not fit"},
		{"text without its flag", func(fs []Field) []Field {
			return slices.Delete(fs, index(fs, "QueryTruncated"), index(fs, "QueryTruncated")+1)
		}, "does not fit"},
		{"derived register", func(fs []Field) []Field { fs[index(fs, "FirstSeen")].Fold = Register; return fs }, "does not fit"},
		{"any event of no kind", func(fs []Field) []Field { fs[index(fs, "Reconciled")].EventKind = ""; return fs }, "does not fit"},
		{"event field of a fact's kind", func(fs []Field) []Field { fs[index(fs, "Error")].Kind = String; return fs }, "carries only its state and error"},
		{"enum on a number", func(fs []Field) []Field { fs[index(fs, "SlotMs")].Enum = []string{"1"}; return fs }, "only strings and states"},
		{"split group", func(fs []Field) []Field {
			i := index(fs, "CompletedUnits")
			fs[i].Group = ""
			return fs
		}, "group Progress is split"},
		{"unknown group", func(fs []Field) []Field { fs[index(fs, "SlotMs")].Group = "Stats"; return fs }, "not among Groups"},
		{"grouped key", func(fs []Field) []Field { fs[0].Group = "Progress"; return fs }, "only facts are grouped"},
		{"column type", func(fs []Field) []Field { fs[6].Column.Type = "INTEGER"; return fs }, `type "INTEGER"`},
		{"column mode", func(fs []Field) []Field { fs[6].Column.Mode = "OPTIONAL"; return fs }, `mode "OPTIONAL"`},
		{"record without fields", func(fs []Field) []Field { fs[6].Column.Type = "RECORD"; return fs }, "only a RECORD has fields"},
		{"nameless subcolumn", func(fs []Field) []Field {
			c := &fs[index(fs, "Labels")].Column
			c.Fields = slices.Clone(c.Fields)
			c.Fields[0].Name = ""
			return fs
		}, "a column without a name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.edit(slices.Clone(Fields)))
			if err == nil || !strings.Contains(err.Error(), tt.wants) {
				t.Errorf("Check() = %v; want an error saying %q", err, tt.wants)
			}
		})
	}
}

func index(fs []Field, name string) int {
	i := slices.IndexFunc(fs, func(f Field) bool { return f.Name == name })
	if i < 0 {
		panic("no field " + name)
	}
	return i
}

// TestColumnsGolden pins the BigQuery history's columns, in BigQuery's
// JSON schema form: a change to a column shows up here.
func TestColumnsGolden(t *testing.T) {
	golden.JSON(t, filepath.Join("testdata", "bigquery_columns.json"), Columns())
}

// TestTableColumns checks the history table's columns: the fields'
// columns in their order, then the history's own, each described.
func TestTableColumns(t *testing.T) {
	var want []string
	for _, f := range Fields {
		want = append(want, f.Column.Name)
	}
	for _, h := range HistoryColumns {
		want = append(want, h.Column.Name)
	}
	var got []string
	for _, c := range TableColumns() {
		got = append(got, c.Name)
		if c.Description == "" {
			t.Errorf("column %s has no description", c.Name)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("table columns (-want +got):\n%s", diff)
	}
}

// TestStandardColumns checks the columns that follow INFORMATION_SCHEMA.JOBS
// against the list of its columns the history must keep, with their types.
func TestStandardColumns(t *testing.T) {
	want := map[string]string{
		"project_id": "STRING", "job_id": "STRING", "creation_time": "TIMESTAMP", "start_time": "TIMESTAMP",
		"end_time": "TIMESTAMP", "state": "STRING", "job_type": "STRING", "statement_type": "STRING",
		"priority": "STRING", "user_email": "STRING", "query": "STRING", "total_bytes_processed": "INT64",
		"total_bytes_billed": "INT64", "total_slot_ms": "INT64", "cache_hit": "BOOL", "reservation_id": "STRING",
		"error_result":      "RECORD<reason STRING, location STRING, message STRING>",
		"labels":            "REPEATED RECORD<key STRING, value STRING>",
		"destination_table": "RECORD<project_id STRING, dataset_id STRING, table_id STRING>",
		"referenced_tables": "REPEATED RECORD<project_id STRING, dataset_id STRING, table_id STRING>",
		"parent_job_id":     "STRING",
	}
	got := map[string]string{}
	for _, c := range Columns() {
		if c.Standard {
			got[c.Name] = typeOf(c)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("INFORMATION_SCHEMA.JOBS columns (-want +got):\n%s", diff)
	}
}

// typeOf writes a column's type as GoogleSQL would, with its mode.
func typeOf(c Column) string {
	typ := c.Type
	if len(c.Fields) > 0 {
		var subs []string
		for _, s := range c.Fields {
			subs = append(subs, s.Name+" "+typeOf(s))
		}
		typ += "<" + strings.Join(subs, ", ") + ">"
	}
	if c.Mode == Repeated {
		typ = "REPEATED " + typ
	}
	return typ
}

// TestConversions checks that each column says how a row fills it: records
// of table names, key-value lists and errors are converted, the rest copied.
func TestConversions(t *testing.T) {
	for _, f := range Fields {
		want := Copy
		switch {
		case f.Kind == Error:
			want = ErrorResult
		case f.Kind == StringMap:
			want = KeyValue
		case f.Column.Type == "RECORD":
			want = TableName
		}
		if f.Column.From != want {
			t.Errorf("%s: column %s converts with %d; want %d", f.Name, f.Column.Name, f.Column.From, want)
		}
	}
}
