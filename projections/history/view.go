package history

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/cenkalti/backoff/v5"
	"google.golang.org/api/iterator"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/schema"
)

// View reads the jobs view of the history; *JobsView is the one in
// BigQuery.
type View interface {
	// Jobs returns the rows of the jobs whose first event is before to and
	// whose last is at or after from, or which have not finished, of
	// project only when it is set, by job: a superset of the rows of the
	// jobs with an event in [from, to), since the sink writes a row for
	// every event but a progress sample of a running job, whose row's last
	// event may be long before from. It calls fn with each row, one per
	// job, in key order (project, location, job id: compareKeys), so that
	// a reader can hold a few rows at a time whatever the range.
	Jobs(ctx context.Context, from, to time.Time, project string, fn func(Row) error) error
}

// JobsView is the jobs view of a history in BigQuery.
type JobsView struct {
	client *bigquery.Client
	b      schema.BigQuery
	// QueryTimeout bounds each attempt of the query until its first page of
	// rows (default DefaultQueryTimeout): a BigQuery that does not answer
	// fails the read with ErrUnavailable, where the client would wait as
	// long as the caller's context lets it. The pages after it are read as
	// the caller takes the rows, within the caller's context.
	QueryTimeout time.Duration
}

// DefaultQueryTimeout is JobsView.QueryTimeout's default: a query of the
// jobs view over a month takes seconds.
const DefaultQueryTimeout = 2 * time.Minute

var _ View = (*JobsView)(nil)

// NewJobsView reads the jobs view of the history b through client.
func NewJobsView(client *bigquery.Client, b schema.BigQuery) *JobsView {
	return &JobsView{client: client, b: b}
}

// Jobs implements View. It runs one query, billed to the client's project,
// tried again with backoff for a minute while BigQuery fails transiently;
// an attempt that passes QueryTimeout is not tried again. Then it reads the
// rows page by page as fn takes them: BigQuery has QueryTimeout to send
// each page (the time fn takes does not count). The client tries a page
// again itself while BigQuery fails transiently; a page that fails for
// good fails the read, the first one included, since rows fn has had
// cannot be taken back.
func (v *JobsView) Jobs(ctx context.Context, from, to time.Time, project string, fn func(Row) error) error {
	d := cmp.Or(v.QueryTimeout, DefaultQueryTimeout)
	late := func() error {
		return fmt.Errorf("%w: BigQuery did not answer the query of %s within %s", events.ErrUnavailable, v.b.Table(schema.JobsView), d)
	}
	job, err := backoff.Retry(ctx, func() (*bigquery.Job, error) {
		cause := late()
		actx, cancel := context.WithTimeoutCause(ctx, d, cause)
		defer cancel()
		job, err := v.query(actx, from, to, project)
		if err != nil && context.Cause(actx) == cause {
			return nil, backoff.Permanent(fmt.Errorf("%w (%w)", cause, err))
		}
		if err != nil && !schema.Transient(err) {
			return nil, backoff.Permanent(err)
		}
		return job, err
	}, backoff.WithMaxElapsedTime(time.Minute))
	if err != nil {
		return err
	}
	// The rows' context ends when BigQuery has not sent the next page
	// within d.
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stalled := time.AfterFunc(d, func() { cancel(late()) })
	defer stalled.Stop()
	it, err := job.Read(rctx)
	if err != nil {
		return fmt.Errorf("reading %s: %w", v.b.Table(schema.JobsView), err)
	}
	for {
		var vals map[string]bigquery.Value
		err := it.Next(&vals)
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			if cause := context.Cause(rctx); cause != nil && ctx.Err() == nil {
				err = fmt.Errorf("%w (%w)", cause, err)
			}
			return fmt.Errorf("reading %s: %w", v.b.Table(schema.JobsView), err)
		}
		row := make(Row, len(vals))
		for k, val := range vals {
			row[k] = fromBigQuery(val)
		}
		if !stalled.Stop() {
			return fmt.Errorf("reading %s: %w", v.b.Table(schema.JobsView), context.Cause(rctx))
		}
		if err := fn(row); err != nil {
			return err
		}
		stalled.Reset(d)
	}
}

// query runs the query and waits, within ctx, for it to finish.
func (v *JobsView) query(ctx context.Context, from, to time.Time, project string) (*bigquery.Job, error) {
	sql := "SELECT * FROM " + v.b.Table(schema.JobsView) + " WHERE first_seen < @to AND (last_seen >= @from OR IFNULL(state, '') != 'DONE')"
	params := []bigquery.QueryParameter{{Name: "from", Value: from}, {Name: "to", Value: to}}
	if project != "" {
		sql += " AND project_id = @project"
		params = append(params, bigquery.QueryParameter{Name: "project", Value: project})
	}
	sql += " ORDER BY project_id, location, job_id"
	q := v.client.Query(sql)
	q.Parameters = params
	q.Location = v.b.Location
	job, err := q.Run(ctx)
	if err != nil {
		return nil, fmt.Errorf("querying %s: %w", v.b.Table(schema.JobsView), err)
	}
	if _, err := job.Wait(ctx); err != nil {
		return nil, fmt.Errorf("querying %s: %w", v.b.Table(schema.JobsView), err)
	}
	return job, nil
}

// keyOf returns the job a row is a version of: its first columns are the
// job's key, project, location and job id, as the field table lists them.
func keyOf(r Row) events.JobKey {
	s := func(col int) string { v, _ := r[columns[col]].(string); return v }
	return events.JobKey{Project: s(0), Location: s(1), JobID: s(2)}
}
