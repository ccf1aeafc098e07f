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
	// event may be long before from.
	Jobs(ctx context.Context, from, to time.Time, project string) (map[events.JobKey]Row, error)
}

// JobsView is the jobs view of a history in BigQuery.
type JobsView struct {
	client *bigquery.Client
	b      schema.BigQuery
	// QueryTimeout bounds each attempt of the query, the reading of its
	// rows included (default DefaultQueryTimeout): a BigQuery that does
	// not answer fails the read with ErrUnavailable, where the client
	// would wait as long as the caller's context lets it.
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
// an attempt that passes QueryTimeout is not tried again.
func (v *JobsView) Jobs(ctx context.Context, from, to time.Time, project string) (map[events.JobKey]Row, error) {
	d := cmp.Or(v.QueryTimeout, DefaultQueryTimeout)
	return backoff.Retry(ctx, func() (map[events.JobKey]Row, error) {
		late := fmt.Errorf("%w: BigQuery did not answer the query of %s within %s", events.ErrUnavailable, v.b.Table(schema.JobsView), d)
		actx, cancel := context.WithTimeoutCause(ctx, d, late)
		defer cancel()
		rows, err := v.jobs(actx, from, to, project)
		if err != nil && context.Cause(actx) == late {
			return nil, backoff.Permanent(fmt.Errorf("%w (%w)", late, err))
		}
		if err != nil && !schema.Transient(err) {
			return nil, backoff.Permanent(err)
		}
		return rows, err
	}, backoff.WithMaxElapsedTime(time.Minute))
}

func (v *JobsView) jobs(ctx context.Context, from, to time.Time, project string) (map[events.JobKey]Row, error) {
	sql := "SELECT * FROM " + v.b.Table(schema.JobsView) + " WHERE first_seen < @to AND (last_seen >= @from OR IFNULL(state, '') != 'DONE')"
	params := []bigquery.QueryParameter{{Name: "from", Value: from}, {Name: "to", Value: to}}
	if project != "" {
		sql += " AND project_id = @project"
		params = append(params, bigquery.QueryParameter{Name: "project", Value: project})
	}
	q := v.client.Query(sql)
	q.Parameters = params
	q.Location = v.b.Location
	it, err := q.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("querying %s: %w", v.b.Table(schema.JobsView), err)
	}
	out := map[events.JobKey]Row{}
	for {
		var vals map[string]bigquery.Value
		err := it.Next(&vals)
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", v.b.Table(schema.JobsView), err)
		}
		row := make(Row, len(vals))
		for k, val := range vals {
			row[k] = fromBigQuery(val)
		}
		out[keyOf(row)] = row
	}
}

// keyOf returns the job a row is a version of: its first columns are the
// job's key, project, location and job id, as the field table lists them.
func keyOf(r Row) events.JobKey {
	s := func(col int) string { v, _ := r[columns[col]].(string); return v }
	return events.JobKey{Project: s(0), Location: s(1), JobID: s(2)}
}
