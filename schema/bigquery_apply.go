package schema

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"
)

// ApplyBigQuery creates or updates the job history in BigQuery: the
// dataset (in b.Location), the job_versions table (partitioned by day of
// creation_time, clustered by ClusteringColumns, its partitions expiring
// after b.PartitionExpiration) and the views. Running it again changes
// nothing. On an existing table it adds the columns the schema has and the
// table lacks, in place (rows keep their data; the new columns are NULL in
// them), and brings the partition expiration and clustering up to date; a
// view whose query differs is updated. It never deletes a column, a table or
// data, and refuses what cannot be changed in place: a dataset in another
// location, a table partitioned otherwise, a column of another type.
func ApplyBigQuery(ctx context.Context, c *bigquery.Client, b BigQuery) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("applying the BigQuery history: %w", err)
	}
	ds := c.DatasetInProject(b.Project, b.Dataset)
	if err := ensureDataset(ctx, ds, b.Location); err != nil {
		return fmt.Errorf("applying the BigQuery history: dataset %s.%s: %w", b.Project, b.Dataset, err)
	}
	if err := ensureJobVersions(ctx, ds.Table(JobVersionsTable), b); err != nil {
		return fmt.Errorf("applying the BigQuery history: table %s: %w", JobVersionsTable, err)
	}
	for _, v := range views {
		sql, err := b.render(v.sql)
		if err == nil {
			err = ensureView(ctx, ds.Table(v.name), sql, v.description)
		}
		if err != nil {
			return fmt.Errorf("applying the BigQuery history: view %s: %w", v.name, err)
		}
	}
	return nil
}

// httpStatus returns the HTTP status of a BigQuery API error, or 0.
func httpStatus(err error) int {
	var e *googleapi.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// retryableReasons are the reasons BigQuery gives to errors that may
// succeed when tried again (its troubleshooting page says to retry them).
var retryableReasons = []string{"backendError", "internalError", "jobInternalError", "rateLimitExceeded"}

// Transient reports whether a BigQuery API call that failed with err may
// succeed if tried again: a server error (5xx) or one of the reasons
// BigQuery documents as retryable. Everything else (a bad request, a
// missing permission, a missing dataset) needs a change first.
func Transient(err error) bool {
	var e *googleapi.Error
	if !errors.As(err, &e) {
		return false
	}
	if e.Code >= 500 {
		return true
	}
	for _, item := range e.Errors {
		if slices.Contains(retryableReasons, item.Reason) {
			return true
		}
	}
	return false
}

func ensureDataset(ctx context.Context, ds *bigquery.Dataset, location string) error {
	md, err := ds.Metadata(ctx)
	if httpStatus(err) == http.StatusNotFound {
		err = ds.Create(ctx, &bigquery.DatasetMetadata{Location: location,
			Description: "bqobserver: the history of every BigQuery job of the organization."})
		if httpStatus(err) == http.StatusConflict {
			return nil // another setup created it meanwhile
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("reading: %w", err)
	}
	if md.Location != "" && !strings.EqualFold(md.Location, location) {
		return fmt.Errorf("it is in location %s, not %s: set --bigquery-location %[1]s or choose another dataset", md.Location, location)
	}
	return nil
}

func ensureJobVersions(ctx context.Context, t *bigquery.Table, b BigQuery) error {
	want := JobVersions()
	md, err := t.Metadata(ctx)
	if httpStatus(err) == http.StatusNotFound {
		err = t.Create(ctx, &bigquery.TableMetadata{
			Description:      "Every version of every job: one row per state change, folded from the event log. Read it through the jobs view.",
			Schema:           want,
			TimePartitioning: partitioning(b),
			Clustering:       &bigquery.Clustering{Fields: ClusteringColumns},
		})
		if httpStatus(err) != http.StatusConflict {
			return err
		}
		md, err = t.Metadata(ctx)
	}
	if err != nil {
		return fmt.Errorf("reading: %w", err)
	}
	update, err := tableUpdate(md, want, b)
	if err != nil || update == nil {
		return err
	}
	if _, err := t.Update(ctx, *update, md.ETag); err != nil {
		return fmt.Errorf("updating: %w", err)
	}
	return nil
}

func partitioning(b BigQuery) *bigquery.TimePartitioning {
	return &bigquery.TimePartitioning{Type: bigquery.DayPartitioningType, Field: PartitionColumn, Expiration: b.PartitionExpiration}
}

// tableUpdate returns what brings an existing job_versions up to date, or
// nil when it is.
func tableUpdate(md *bigquery.TableMetadata, want bigquery.Schema, b BigQuery) (*bigquery.TableMetadataToUpdate, error) {
	tp := md.TimePartitioning
	if tp == nil || tp.Field != PartitionColumn || tp.Type != bigquery.DayPartitioningType {
		return nil, fmt.Errorf("it is not partitioned by day of %s (%+v): it cannot be changed in place; rename it and run setup and history replay", PartitionColumn, tp)
	}
	var u bigquery.TableMetadataToUpdate
	changed := false
	merged, added, err := mergeSchema(md.Schema, want)
	if err != nil {
		return nil, err
	}
	if added {
		u.Schema, changed = merged, true
	}
	if tp.Expiration != b.PartitionExpiration {
		u.TimePartitioning, changed = partitioning(b), true
	}
	if md.Clustering == nil || !slices.Equal(md.Clustering.Fields, ClusteringColumns) {
		u.Clustering, changed = &bigquery.Clustering{Fields: ClusteringColumns}, true
	}
	if !changed {
		return nil, nil
	}
	return &u, nil
}

// mergeSchema returns have with the columns of want it lacks appended, at
// every level of records, and whether it added any. A column added to an
// existing table must be NULLABLE or REPEATED, so a REQUIRED one is added
// NULLABLE (the rows already there have no value for it). A column of want
// whose type differs in have is an error: BigQuery cannot change it in place.
func mergeSchema(have, want bigquery.Schema) (bigquery.Schema, bool, error) {
	out := slices.Clone(have)
	added := false
	var errs []error
	for _, w := range want {
		i := slices.IndexFunc(out, func(h *bigquery.FieldSchema) bool { return strings.EqualFold(h.Name, w.Name) })
		if i < 0 {
			c := *w
			c.Required = false
			out, added = append(out, &c), true
			continue
		}
		h := *out[i]
		if h.Type != w.Type || h.Repeated != w.Repeated {
			errs = append(errs, fmt.Errorf("column %s is %s (repeated %v) in the table and %s (repeated %v) in the schema: it cannot be changed in place",
				w.Name, h.Type, h.Repeated, w.Type, w.Repeated))
			continue
		}
		if w.Type == bigquery.RecordFieldType {
			sub, subAdded, err := mergeSchema(h.Schema, w.Schema)
			if err != nil {
				errs = append(errs, fmt.Errorf("record %s: %w", w.Name, err))
				continue
			}
			if subAdded {
				h.Schema, added = sub, true
				out[i] = &h
			}
		}
	}
	return out, added, errors.Join(errs...)
}

func ensureView(ctx context.Context, t *bigquery.Table, sql, description string) error {
	md, err := t.Metadata(ctx)
	if httpStatus(err) == http.StatusNotFound {
		err = t.Create(ctx, &bigquery.TableMetadata{ViewQuery: sql, Description: description})
		if httpStatus(err) != http.StatusConflict {
			return err
		}
		md, err = t.Metadata(ctx)
	}
	if err != nil {
		return fmt.Errorf("reading: %w", err)
	}
	if md.Type != bigquery.ViewTable {
		return fmt.Errorf("it exists and is a %s, not a view", md.Type)
	}
	if md.ViewQuery == sql && md.Description == description {
		return nil
	}
	if _, err := t.Update(ctx, bigquery.TableMetadataToUpdate{ViewQuery: sql, Description: description}, md.ETag); err != nil {
		return fmt.Errorf("updating: %w", err)
	}
	return nil
}
