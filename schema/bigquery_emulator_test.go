package schema_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/iterator"

	"github.com/bqobserver/bqobserver/internal/testutil/bqtest"
	"github.com/bqobserver/bqobserver/schema"
)

// columnNames lists a schema's columns, records' columns as record.column.
func columnNames(s bigquery.Schema) []string {
	var out []string
	for _, f := range s {
		out = append(out, f.Name)
		for _, sub := range columnNames(f.Schema) {
			out = append(out, f.Name+"."+sub)
		}
	}
	return out
}

// layout is what ApplyBigQuery sets up, as the API reports it.
type layout struct {
	Columns      []string
	Partitioning bigquery.TimePartitioning
	Clustering   []string
	Views        map[string]string
}

func readLayout(t *testing.T, bq *bqtest.BigQuery) layout {
	t.Helper()
	ds := bq.Client.DatasetInProject(bqtest.Project, bq.Dataset)
	md, err := ds.Table(schema.JobVersionsTable).Metadata(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	l := layout{Columns: columnNames(md.Schema), Views: map[string]string{}}
	if md.TimePartitioning != nil {
		l.Partitioning = *md.TimePartitioning
	}
	if md.Clustering != nil {
		l.Clustering = md.Clustering.Fields
	}
	for _, v := range []string{schema.JobsView, schema.JobsRunningView, schema.JobsDailyView} {
		vmd, err := ds.Table(v).Metadata(t.Context())
		if err != nil {
			t.Fatalf("view %s: %v", v, err)
		}
		l.Views[v] = vmd.ViewQuery
	}
	return l
}

func wantLayout(t *testing.T, b schema.BigQuery) layout {
	t.Helper()
	l := layout{
		Columns:      columnNames(schema.JobVersions()),
		Partitioning: bigquery.TimePartitioning{Type: bigquery.DayPartitioningType, Field: "creation_time", Expiration: b.PartitionExpiration},
		Clustering:   schema.ClusteringColumns,
		Views:        map[string]string{},
	}
	for _, v := range []string{schema.JobsView, schema.JobsRunningView, schema.JobsDailyView} {
		sql, err := b.ViewSQL(v)
		if err != nil {
			t.Fatal(err)
		}
		l.Views[v] = sql
	}
	return l
}

// TestApplyBigQuery applies the history to a new dataset, again, and with
// a partition expiration set and then removed: each time the table and
// views are what the schema says. (The emulator keeps the expiration in the
// table's metadata but never deletes a partition; expiring them is
// BigQuery's.)
func TestApplyBigQuery(t *testing.T) {
	bq := bqtest.New(t)
	for _, step := range []struct {
		name       string
		expiration time.Duration
	}{
		{"create", 0},
		{"again", 0},
		{"partitions expire", 30 * 24 * time.Hour},
		{"they no longer expire", 0},
	} {
		b := schema.BigQuery{Project: bqtest.Project, Dataset: bq.Dataset, Location: "US", PartitionExpiration: step.expiration}
		if err := schema.ApplyBigQuery(t.Context(), bq.Client, b); err != nil {
			t.Fatalf("%s: ApplyBigQuery: %v", step.name, err)
		}
		if diff := cmp.Diff(wantLayout(t, b), readLayout(t, bq)); diff != "" {
			t.Errorf("%s: layout (-want +got):\n%s", step.name, diff)
		}
	}
}

// TestApplyBigQueryUpgradesAnOlderTable makes job_versions as an older
// build did, with fewer columns, a record with fewer fields and rows in it,
// and an older view; ApplyBigQuery upgrades them in place: the same table,
// its rows kept, with every column of the schema, and the view's query
// updated.
//
// The emulator differs from BigQuery here: it records the new columns in the
// table's metadata but its query engine keeps the columns the table was
// created with (schema updates and ALTER TABLE do not reach it), and a view's
// new query is recorded but not run. So this test reads the upgrade through
// the API, and the rows through the old columns; that BigQuery then queries
// and writes the new columns is what its tables.update promises.
func TestApplyBigQueryUpgradesAnOlderTable(t *testing.T) {
	bq := bqtest.New(t)
	b := schema.BigQuery{Project: bqtest.Project, Dataset: bq.Dataset, Location: "US"}
	ds := bq.Client.DatasetInProject(bqtest.Project, bq.Dataset)
	if err := ds.Create(t.Context(), &bigquery.DatasetMetadata{Location: "US"}); err != nil {
		t.Fatal(err)
	}
	older := olderSchema(t)
	tbl := ds.Table(schema.JobVersionsTable)
	err := tbl.Create(t.Context(), &bigquery.TableMetadata{Schema: older,
		TimePartitioning: &bigquery.TimePartitioning{Type: bigquery.DayPartitioningType, Field: "creation_time"},
		Clustering:       &bigquery.Clustering{Fields: schema.ClusteringColumns}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.Table(schema.JobsView).Create(t.Context(), &bigquery.TableMetadata{
		ViewQuery: "SELECT * FROM " + b.Table(schema.JobVersionsTable)}); err != nil {
		t.Fatal(err)
	}
	query(t, bq, "INSERT INTO "+b.Table(schema.JobVersionsTable)+" (project_id, location, job_id, state, creation_time) VALUES "+
		"('p1', 'US', 'j1', 'DONE', TIMESTAMP '2026-01-02 03:04:05'), ('p2', 'EU', 'j2', 'RUNNING', TIMESTAMP '2026-01-03 00:00:00')")
	before, err := tbl.Metadata(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	if err := schema.ApplyBigQuery(t.Context(), bq.Client, b); err != nil {
		t.Fatalf("ApplyBigQuery: %v", err)
	}
	// BigQuery appends the columns a table gains, after the ones it had.
	want, upgraded := wantLayout(t, b), readLayout(t, bq)
	slices.Sort(want.Columns)
	slices.Sort(upgraded.Columns)
	if diff := cmp.Diff(want, upgraded); diff != "" {
		t.Errorf("layout after the upgrade, columns in any order (-want +got):\n%s", diff)
	}
	after, err := tbl.Metadata(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var top []string
	for _, f := range after.Schema[:len(older)] {
		top = append(top, f.Name)
	}
	if diff := cmp.Diff(columnNames(bigquery.Schema(topLevel(older))), top); diff != "" {
		t.Errorf("the upgrade moved the table's columns (-before +after):\n%s", diff)
	}
	if !after.CreationTime.Equal(before.CreationTime) {
		t.Errorf("the table was created again (%v, was %v); want it upgraded in place", after.CreationTime, before.CreationTime)
	}
	got := query(t, bq, "SELECT project_id, location, job_id, state FROM "+b.Table(schema.JobVersionsTable)+" ORDER BY job_id")
	if diff := cmp.Diff([]string{"p1 US j1 DONE", "p2 EU j2 RUNNING"}, got); diff != "" {
		t.Errorf("rows after the upgrade (-want +got):\n%s", diff)
	}
}

// topLevel returns s without the columns of its records.
func topLevel(s bigquery.Schema) bigquery.Schema {
	out := make(bigquery.Schema, len(s))
	for i, f := range s {
		c := *f
		c.Schema = nil
		out[i] = &c
	}
	return out
}

// olderSchema is job_versions as an older build made it: without some of
// the columns (none the views read: the emulator checks a view against the
// columns its engine knows), and with error_result lacking its location.
func olderSchema(t *testing.T) bigquery.Schema {
	t.Helper()
	later := []string{"billing_tier", "output_rows", "active_units", "completed_units", "pending_units",
		"queued_ms", "run_ms", "final_state_source"}
	var s bigquery.Schema
	for _, f := range schema.JobVersions() {
		switch {
		case slices.Contains(later, f.Name):
		case f.Name == "error_result":
			rec := *f
			rec.Schema = slices.DeleteFunc(slices.Clone(rec.Schema), func(sub *bigquery.FieldSchema) bool { return sub.Name == "location" })
			s = append(s, &rec)
		default:
			s = append(s, f)
		}
	}
	if len(s) != len(schema.JobVersions())-len(later) {
		t.Fatalf("the schema lacks some of %v", later)
	}
	return s
}

// TestApplyBigQueryRefusesWhatItCannotChange: a dataset in another
// location, and a table partitioned otherwise, are errors, left as they are.
func TestApplyBigQueryRefusesWhatItCannotChange(t *testing.T) {
	bq := bqtest.New(t)
	ds := bq.Client.DatasetInProject(bqtest.Project, bq.Dataset)
	if err := ds.Create(t.Context(), &bigquery.DatasetMetadata{Location: "EU"}); err != nil {
		t.Fatal(err)
	}
	b := schema.BigQuery{Project: bqtest.Project, Dataset: bq.Dataset, Location: "US"}
	if err := schema.ApplyBigQuery(t.Context(), bq.Client, b); err == nil || !strings.Contains(err.Error(), "location EU") {
		t.Errorf("ApplyBigQuery on a dataset in EU with location US = %v; want an error naming EU", err)
	}
	b.Location = "EU"
	if err := ds.Table(schema.JobVersionsTable).Create(t.Context(), &bigquery.TableMetadata{Schema: schema.JobVersions()}); err != nil {
		t.Fatal(err)
	}
	if err := schema.ApplyBigQuery(t.Context(), bq.Client, b); err == nil || !strings.Contains(err.Error(), "not partitioned") {
		t.Errorf("ApplyBigQuery on an unpartitioned table = %v; want an error saying so", err)
	}
}

// query runs sql and returns its rows, each as its values joined by spaces.
func query(t *testing.T, bq *bqtest.BigQuery, sql string) []string {
	t.Helper()
	it, err := bq.Client.Query(sql).Read(t.Context())
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	var out []string
	for {
		var row []bigquery.Value
		err := it.Next(&row)
		if err == iterator.Done {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(fmt.Sprint(row), "["), "]"))
	}
}

// TestCheckBigQuery reads the history without changing it: before setup the
// dataset is missing; after it every part is as ApplyBigQuery leaves it; a
// partition expiration setup has not applied, and a view deleted behind its
// back, are reported, and nothing is changed or re-created.
func TestCheckBigQuery(t *testing.T) {
	bq := bqtest.New(t)
	b := schema.BigQuery{Project: bqtest.Project, Dataset: bq.Dataset, Location: "US"}
	type part struct {
		Kind, Name string
		NotApplied bool
		Other      string
	}
	check := func() []part {
		var out []part
		for _, p := range schema.CheckBigQuery(t.Context(), bq.Client, b) {
			got := part{Kind: p.Kind, Name: p.Name, NotApplied: errors.Is(p.Err, schema.ErrHistoryNotApplied)}
			if p.Err != nil && !got.NotApplied {
				got.Other = p.Err.Error()
			}
			out = append(out, got)
		}
		return out
	}
	dataset := part{Kind: "dataset", Name: bqtest.Project + "." + bq.Dataset}
	applied := []part{dataset, {Kind: "table", Name: schema.JobVersionsTable},
		{Kind: "view", Name: schema.JobsView}, {Kind: "view", Name: schema.JobsRunningView}, {Kind: "view", Name: schema.JobsDailyView}}

	missing := dataset
	missing.NotApplied = true
	if diff := cmp.Diff([]part{missing}, check()); diff != "" {
		t.Errorf("before setup (-want +got):\n%s", diff)
	}
	if err := schema.ApplyBigQuery(t.Context(), bq.Client, b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(applied, check()); diff != "" {
		t.Errorf("after setup (-want +got):\n%s", diff)
	}
	b.PartitionExpiration = 30 * 24 * time.Hour
	expiring := slices.Clone(applied)
	expiring[1].NotApplied = true
	if diff := cmp.Diff(expiring, check()); diff != "" {
		t.Errorf("a partition expiration setup has not applied (-want +got):\n%s", diff)
	}
	b.PartitionExpiration = 0
	if err := bq.Client.DatasetInProject(bqtest.Project, bq.Dataset).Table(schema.JobsDailyView).Delete(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(applied)
	want[4].NotApplied = true
	if diff := cmp.Diff(want, check()); diff != "" {
		t.Errorf("a view deleted (-want +got):\n%s", diff)
	}
}
