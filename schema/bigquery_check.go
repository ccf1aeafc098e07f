package schema

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"cloud.google.com/go/bigquery"
)

// ErrHistoryNotApplied marks a history that ApplyBigQuery has not created,
// or not brought up to date: a missing dataset, table or view, a table that
// lacks columns of the schema or whose partition expiration or clustering
// differs, a view whose query or description differs. Running setup (or
// run with --auto-create) mends it.
var ErrHistoryNotApplied = errors.New("the BigQuery history is not set up")

// HistoryPart is one part of the history that CheckBigQuery looked at, and
// what it found: nil when it is as ApplyBigQuery leaves it.
type HistoryPart struct {
	// Kind is "dataset", "table" or "view"; Name its name.
	Kind, Name string
	Err        error
}

// CheckBigQuery reads the history's dataset, table and views, changing
// nothing, and reports each: what ApplyBigQuery would create or change
// matches ErrHistoryNotApplied, saying what differs; what it would refuse
// (a table not partitioned by day of creation_time, a column of another
// type) is the error it would return; a failure to read it (no permission,
// BigQuery unreachable) is returned as it is.
func CheckBigQuery(ctx context.Context, c *bigquery.Client, b BigQuery) []HistoryPart {
	ds := c.DatasetInProject(b.Project, b.Dataset)
	out := []HistoryPart{{Kind: "dataset", Name: b.Project + "." + b.Dataset, Err: checkDataset(ctx, ds, b.Location)}}
	if out[0].Err != nil {
		return out
	}
	out = append(out, HistoryPart{Kind: "table", Name: JobVersionsTable, Err: checkJobVersions(ctx, ds.Table(JobVersionsTable), b)})
	for _, v := range views {
		out = append(out, HistoryPart{Kind: "view", Name: v.name, Err: checkView(ctx, ds.Table(v.name), b, v.sql, v.description)})
	}
	return out
}

func checkDataset(ctx context.Context, ds *bigquery.Dataset, location string) error {
	md, err := ds.Metadata(ctx)
	switch {
	case httpStatus(err) == http.StatusNotFound:
		return fmt.Errorf("%w: the dataset does not exist", ErrHistoryNotApplied)
	case err != nil:
		return err
	case md.Location != "" && !strings.EqualFold(md.Location, location):
		return fmt.Errorf("it is in location %s, not %s: set --bigquery-location %[1]s", md.Location, location)
	}
	return nil
}

// checkJobVersions reports what ensureJobVersions would change or refuse.
func checkJobVersions(ctx context.Context, t *bigquery.Table, b BigQuery) error {
	md, err := t.Metadata(ctx)
	switch {
	case httpStatus(err) == http.StatusNotFound:
		return fmt.Errorf("%w: the table does not exist", ErrHistoryNotApplied)
	case err != nil:
		return err
	}
	return notApplied(tableUpdate(md, JobVersions(), b))
}

// notApplied reports a change that setup would make as
// ErrHistoryNotApplied, saying what it changes, and an error as it is.
func notApplied(c *tableChange, err error) error {
	switch {
	case err != nil:
		return err
	case c != nil:
		return fmt.Errorf("%w: %s", ErrHistoryNotApplied, c)
	}
	return nil
}

// checkView reports what ensureView would change or refuse.
func checkView(ctx context.Context, t *bigquery.Table, b BigQuery, sql, description string) error {
	want, err := b.render(sql)
	if err != nil {
		return err
	}
	md, err := t.Metadata(ctx)
	switch {
	case httpStatus(err) == http.StatusNotFound:
		return fmt.Errorf("%w: the view does not exist", ErrHistoryNotApplied)
	case err != nil:
		return err
	}
	return notApplied(viewUpdate(md, want, description))
}
