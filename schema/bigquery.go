package schema

//go:generate go run ../events/internal/genjob schema

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"text/template"
	"time"

	"cloud.google.com/go/bigquery"
)

// The BigQuery job history: one table of job versions and the views over it.
const (
	// JobVersionsTable holds a row for every version of every job the sink
	// wrote (at least one per state change): see job_versions.json.
	JobVersionsTable = "job_versions"
	// JobsView has one row per job, its latest version, with the columns
	// of INFORMATION_SCHEMA.JOBS where the two overlap.
	JobsView = "jobs"
	// JobsRunningView has the jobs whose latest version is not DONE.
	JobsRunningView = "jobs_running"
	// JobsDailyView aggregates finished jobs per day, project and user.
	JobsDailyView = "jobs_daily"
)

// Defaults of the history's place in BigQuery.
const (
	DefaultBigQueryDataset  = "bqobserver"
	DefaultBigQueryLocation = "US"
)

// PartitionColumn partitions job_versions by day: the column
// INFORMATION_SCHEMA.JOBS is partitioned by, and the one its example queries
// filter on first.
const PartitionColumn = "creation_time"

// ClusteringColumns cluster job_versions, in this order. The first two are
// INFORMATION_SCHEMA.JOBS's own clustering (what cost reports filter and
// group by); statement_type and state are the next most common filters (DML
// or SELECT, finished or not), so queries that filter on any prefix of these
// read fewer blocks.
var ClusteringColumns = []string{"project_id", "user_email", "statement_type", "state"}

// jobVersionsJSON is the table schema of job_versions, generated from the
// field table of package jobfields (go generate ./schema/).
//
//go:embed job_versions.json
var jobVersionsJSON []byte

var _ = JobVersions()

// JobVersions returns the schema of job_versions, parsed from the embedded
// job_versions.json: the fields' columns, then the columns the history adds.
func JobVersions() bigquery.Schema {
	return mustParse("job_versions.json", parseTableSchema, jobVersionsJSON)
}

// parseTableSchema parses a JSON table schema, naming types as the client
// library does at every level (SchemaFromJSON normalises only the top one:
// INT64 is INTEGER, BOOL is BOOLEAN, FLOAT64 is FLOAT).
func parseTableSchema(b []byte) (bigquery.Schema, error) {
	s, err := bigquery.SchemaFromJSON(b)
	if err != nil {
		return nil, err
	}
	var normalise func(bigquery.Schema) error
	normalise = func(fs bigquery.Schema) error {
		for _, f := range fs {
			t, err := bigquery.SchemaFromJSON([]byte(`[{"name":"x","type":"` + string(f.Type) + `"}]`))
			if err != nil {
				return fmt.Errorf("column %s: %w", f.Name, err)
			}
			f.Type = t[0].Type
			if err := normalise(f.Schema); err != nil {
				return err
			}
		}
		return nil
	}
	return s, normalise(s)
}

// BigQuery is where the job history lives in BigQuery, and how its table is
// kept.
type BigQuery struct {
	Project  string
	Dataset  string
	Location string
	// PartitionExpiration, when positive, makes BigQuery delete a day's
	// partition of job_versions that long after the day (by
	// creation_time). Zero keeps history for ever, longer than
	// INFORMATION_SCHEMA's 180 days.
	PartitionExpiration time.Duration
}

// datasetIDPattern is BigQuery's rule for dataset ids: letters, digits and
// underscores, at most 1024 of them.
var datasetIDPattern = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// Validate reports every problem with b at once.
func (b BigQuery) Validate() error {
	var errs []error
	if b.Project == "" {
		errs = append(errs, errors.New("BigQuery project is not set"))
	}
	if !datasetIDPattern.MatchString(b.Dataset) || len(b.Dataset) > 1024 {
		errs = append(errs, fmt.Errorf("BigQuery dataset %q is not a dataset id (letters, digits and underscores)", b.Dataset))
	}
	if b.Location == "" {
		errs = append(errs, errors.New("BigQuery location is not set"))
	}
	if b.PartitionExpiration < 0 {
		errs = append(errs, fmt.Errorf("partition expiration %v is negative", b.PartitionExpiration))
	}
	return errors.Join(errs...)
}

// Table is the fully qualified name of a table or view of the history, as
// GoogleSQL writes it: `project.dataset.table`.
func (b BigQuery) Table(name string) string {
	return "`" + b.Project + "." + b.Dataset + "." + name + "`"
}

// viewsSQL are the views' queries, with {{.Project}} and {{.Dataset}} to
// fill in.
//
//go:embed views/jobs.sql
var jobsSQL string

//go:embed views/jobs_running.sql
var jobsRunningSQL string

//go:embed views/jobs_daily.sql
var jobsDailySQL string

// views are the history's views in the order they are created: each reads
// only the table and the views before it.
var views = []struct{ name, sql, description string }{
	{JobsView, jobsSQL, "One row per job: its latest version. INFORMATION_SCHEMA.JOBS's example queries run against it with only FROM changed."},
	{JobsRunningView, jobsRunningSQL, "The jobs whose latest version is not DONE."},
	{JobsDailyView, jobsDailySQL, "Finished jobs per day, project and user: jobs, failures, bytes billed, slot-hours, estimated on-demand cost."},
}

// ViewSQL returns the query of the history's view name in b.
func (b BigQuery) ViewSQL(name string) (string, error) {
	for _, v := range views {
		if v.name == name {
			return b.render(v.sql)
		}
	}
	return "", fmt.Errorf("no view %q", name)
}

func (b BigQuery) render(sql string) (string, error) {
	t, err := template.New("view").Option("missingkey=error").Parse(sql)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	if err := t.Execute(&out, b); err != nil {
		return "", err
	}
	return strings.TrimSpace(out.String()) + "\n" + schemaMark, nil
}

// schemaMark ends every view's query with how many columns job_versions
// has, in a block comment (a line comment would swallow whatever a client
// puts after the query, such as the parenthesis of a CREATE VIEW … AS (…)). BigQuery keeps the schema a view had when its query was last set: a
// view that selects * would go on listing the old columns to tools that
// read its schema (Looker Studio among them) after setup adds one, until
// its query changes. Setup only ever adds columns, so the count changes
// with every change of the table, and the views' queries with it.
var schemaMark = fmt.Sprintf("/* job_versions has %d columns: setup sets this query again when it adds one, which refreshes the view's schema. */", countColumns(JobVersions()))

// countColumns counts the columns of s at every level of records.
func countColumns(s bigquery.Schema) int {
	n := 0
	for _, f := range s {
		n += 1 + countColumns(f.Schema)
	}
	return n
}

// Prices are BigQuery's on-demand compute prices by location, from the
// embedded prices.json, with where and when they were read.
type Prices struct {
	Description string `json:"description"`
	Source      string `json:"source"`
	AsOf        string `json:"as_of"`
	// USDPerTiB is the price of a TiB of bytes billed, by location.
	USDPerTiB map[string]float64 `json:"usd_per_tib"`

	byLocation map[string]float64 // USDPerTiB by lower-case location
}

//go:embed prices.json
var pricesJSON []byte

var _ = OnDemandPrices()

// OnDemandPrices returns the checked-in on-demand price table.
func OnDemandPrices() Prices { return mustParse("prices.json", parsePrices, pricesJSON) }

func parsePrices(b []byte) (Prices, error) {
	var p Prices
	if err := decodeStrict(b, &p); err != nil {
		return p, err
	}
	if _, err := time.Parse(time.DateOnly, p.AsOf); err != nil || p.Source == "" {
		return p, fmt.Errorf("a source and a date (as_of, YYYY-MM-DD) are required: %q, %q", p.Source, p.AsOf)
	}
	p.byLocation = make(map[string]float64, len(p.USDPerTiB))
	for loc, usd := range p.USDPerTiB {
		if usd <= 0 {
			return p, fmt.Errorf("location %s: price %v is not positive", loc, usd)
		}
		p.byLocation[strings.ToLower(loc)] = usd
	}
	return p, nil
}

// PerTiB returns the on-demand price of a TiB billed in location, whose
// case does not matter, and whether the table has one.
func (p Prices) PerTiB(location string) (float64, bool) {
	usd, ok := p.byLocation[strings.ToLower(location)]
	return usd, ok
}
