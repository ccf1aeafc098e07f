package schema

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"
)

// ApplyBigQuery creates or updates the job history in BigQuery: the
// dataset (in b.Location), the job_versions table (partitioned by day of
// creation_time, clustered by ClusteringColumns, its partitions expiring
// after b.PartitionExpiration) and the views. Running it again changes
// nothing. On an existing table it adds the columns the schema has and the
// table lacks, in place (rows keep their data; the new columns are NULL in
// them), and brings the partition expiration and clustering up to date,
// keeping whether queries must filter on the partition; a view whose query
// or description differs is updated. It never deletes a column, a table or
// data, and refuses what cannot be changed in place: a dataset in another
// location, a table partitioned otherwise, a column of another type.
// Several setups may run at once (replicas starting with --auto-create):
// each update applies only to the table as it was read, and one that lost
// the race reads it again and finds nothing left to change.
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
	create := &bigquery.TableMetadata{
		Description:      "Every version of every job: one row per state change, folded from the event log. Read it through the jobs view.",
		Schema:           JobVersions(),
		TimePartitioning: partitioning(b),
		Clustering:       &bigquery.Clustering{Fields: ClusteringColumns},
	}
	return updateUnlessChanged(ctx, t, create, func(md *bigquery.TableMetadata) (*tableChange, error) {
		return tableUpdate(md, create.Schema, b)
	})
}

// updateAttempts bounds how often updateUnlessChanged reads, decides and
// updates a table: each attempt after the first follows a 412, another
// setup's change, which the next reading sees.
const updateAttempts = 3

// updateUnlessChanged creates t as create when it does not exist, or else
// sends the change decide finds, if any, on condition that t is still as it
// was read (the update carries the etag read, If-Match). When another setup
// changed t in between (two replicas starting with --auto-create after an
// upgrade), BigQuery answers 412 Precondition Failed and nothing is changed;
// then t is read and decided on again, at most updateAttempts times in all.
// The loser of such a race finds the winner's update and nothing left to
// change.
func updateUnlessChanged(ctx context.Context, t *bigquery.Table, create *bigquery.TableMetadata,
	decide func(*bigquery.TableMetadata) (*tableChange, error)) error {
	for attempt := 1; ; attempt++ {
		md, err := readOrCreate(ctx, t, create)
		if err != nil || md == nil {
			return err
		}
		c, err := decide(md)
		if err != nil || c == nil {
			return err
		}
		_, err = t.Update(ctx, c.update, md.ETag)
		switch {
		case httpStatus(err) == http.StatusPreconditionFailed && attempt < updateAttempts:
			continue
		case err != nil:
			return fmt.Errorf("updating (%s): %w", c, err)
		}
		return nil
	}
}

// readOrCreate returns t's metadata, or nil when t did not exist and it
// created it as create. A table another setup created meanwhile (409) is
// read.
func readOrCreate(ctx context.Context, t *bigquery.Table, create *bigquery.TableMetadata) (*bigquery.TableMetadata, error) {
	md, err := t.Metadata(ctx)
	if httpStatus(err) == http.StatusNotFound {
		err = t.Create(ctx, create)
		switch {
		case err == nil:
			return nil, nil
		case httpStatus(err) != http.StatusConflict:
			return nil, fmt.Errorf("creating: %w", err)
		}
		md, err = t.Metadata(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	return md, nil
}

func partitioning(b BigQuery) *bigquery.TimePartitioning {
	return &bigquery.TimePartitioning{Type: bigquery.DayPartitioningType, Field: PartitionColumn, Expiration: b.PartitionExpiration}
}

// tableChange is what brings an existing table or view up to date: the
// update to send, and what it changes, in words (what CheckBigQuery
// reports).
type tableChange struct {
	update bigquery.TableMetadataToUpdate
	what   []string
}

func (c *tableChange) String() string { return strings.Join(c.what, "; ") }

// orNil returns c, or nil when it changes nothing.
func (c *tableChange) orNil() *tableChange {
	if len(c.what) == 0 {
		return nil
	}
	return c
}

// tableUpdate returns what brings an existing job_versions up to date, or
// nil when it is; an error when it cannot be changed in place. It is the
// one description of the table as setup leaves it: ApplyBigQuery sends the
// change, CheckBigQuery reports it.
func tableUpdate(md *bigquery.TableMetadata, want bigquery.Schema, b BigQuery) (*tableChange, error) {
	tp := md.TimePartitioning
	if tp == nil || tp.Field != PartitionColumn || tp.Type != bigquery.DayPartitioningType {
		return nil, fmt.Errorf("it is not partitioned by day of %s (%+v): it cannot be changed in place; rename it and run setup and history replay", PartitionColumn, tp)
	}
	var c tableChange
	merged, added, err := mergeSchema(md.Schema, want)
	if err != nil {
		return nil, err
	}
	if added {
		c.update.Schema = merged
		c.what = append(c.what, "it lacks columns of this version's schema")
	}
	if tp.Expiration != b.PartitionExpiration {
		c.update.TimePartitioning = partitioning(b)
		// The client sends the partitioning's (deprecated) require
		// partition filter even when false, which would turn off an
		// operator's: send the table's own, in both places.
		keep := md.RequirePartitionFilter || tp.RequirePartitionFilter
		c.update.TimePartitioning.RequirePartitionFilter = keep
		c.update.RequirePartitionFilter = keep
		c.what = append(c.what, fmt.Sprintf("its partitions expire %s, not %s", expiry(tp.Expiration), expiry(b.PartitionExpiration)))
	}
	var clustered []string
	if md.Clustering != nil {
		clustered = md.Clustering.Fields
	}
	if !slices.Equal(clustered, ClusteringColumns) {
		c.update.Clustering = &bigquery.Clustering{Fields: ClusteringColumns}
		c.what = append(c.what, fmt.Sprintf("it is clustered by %v, not %v", clustered, ClusteringColumns))
	}
	return c.orNil(), nil
}

// expiry describes a partition expiration.
func expiry(d time.Duration) string {
	if d == 0 {
		return "never"
	}
	return "after " + d.String()
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
	return updateUnlessChanged(ctx, t, &bigquery.TableMetadata{ViewQuery: sql, Description: description},
		func(md *bigquery.TableMetadata) (*tableChange, error) { return viewUpdate(md, sql, description) })
}

// viewUpdate returns what brings an existing view up to date with its
// query and description, or nil when it is; an error when it is not a view.
func viewUpdate(md *bigquery.TableMetadata, sql, description string) (*tableChange, error) {
	if md.Type != bigquery.ViewTable {
		return nil, fmt.Errorf("it exists and is a %s, not a view", md.Type)
	}
	var c tableChange
	if md.ViewQuery != sql {
		c.update.ViewQuery = sql
		c.what = append(c.what, "the view's query is not this version's")
	}
	if md.Description != description {
		c.update.Description = description
		c.what = append(c.what, "the view's description is not this version's")
	}
	return c.orNil(), nil
}
