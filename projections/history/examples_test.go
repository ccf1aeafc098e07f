package history

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/civil"
	gocmp "github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/simulation"
	"github.com/bqobserver/bqobserver/schema"
)

// informationSchema is the FROM target of Google's INFORMATION_SCHEMA.JOBS
// examples: the one thing changed to run them against the jobs view.
const informationSchema = "`region-us`.INFORMATION_SCHEMA.JOBS"

// example is a query of testdata/information_schema and what it answers,
// computed in Go from the fold of every job in the log.
type example struct {
	file   string
	want   func(jobs []Row, now time.Time) []Row
	sortBy []string // for an unordered result: the columns to sort both by
}

var examples = []example{
	{"avg_slot_utilization.sql", func(jobs []Row, now time.Time) []Row {
		var sum any
		for _, j := range where(jobs, createdWithin(now, 8*24*time.Hour), isQuery, notScript, endedWithin(now, 7*24*time.Hour)) {
			sum = add(sum, j["total_slot_ms"])
		}
		return []Row{{"avg_slots": divide(sum, 1000*60*60*24*7)}}
	}, nil},
	{"last_failed_jobs.sql", func(jobs []Row, now time.Time) []Row {
		failed := where(jobs, func(j Row) bool {
			e, _ := j["error_result"].(map[string]any)
			return after(j["creation_time"], now.Add(-24*time.Hour)) && e["reason"] != nil && e["reason"] != "Null"
		})
		slices.SortFunc(failed, func(a, b Row) int { return -compareTimes(a["creation_time"], b["creation_time"]) })
		return project(failed[:min(10, len(failed))], "job_id", "creation_time", "user_email", "error_result")
	}, nil},
	{"long_running_jobs.sql", func(jobs []Row, now time.Time) []Row {
		return project(where(jobs, createdWithin(now, 24*time.Hour), func(j Row) bool {
			return j["state"] != nil && j["state"] != "DONE" && now.Sub(j["creation_time"].(time.Time)) >= 31*time.Minute
		}), "job_id", "job_type", "state", "creation_time", "start_time", "user_email")
	}, []string{"job_id"}},
	{"bytes_per_user.sql", func(jobs []Row, now time.Time) []Row {
		return groupSum(where(jobs, createdWithin(now, 7*24*time.Hour), isQuery, notScript),
			func(j Row) any { return j["user_email"] }, "user_email", "total_bytes_processed", "bytes_processed", 1)
	}, []string{"user_email"}},
	{"hourly_bytes_processed.sql", func(jobs []Row, now time.Time) []Row {
		return descending(groupSum(where(jobs, createdWithin(now, 7*24*time.Hour), isQuery, notScript),
			hourOf("end_time"), "time_window", "total_bytes_processed", "bytes_processed", 1), "time_window")
	}, nil},
	{"most_expensive_queries.sql", func(jobs []Row, now time.Time) []Row {
		recent := where(jobs, createdWithin(now, 24*time.Hour))
		slices.SortStableFunc(recent, func(a, b Row) int { return compareNullsLast(b["total_bytes_processed"], a["total_bytes_processed"]) })
		return project(recent[:min(4, len(recent))], "job_id", "query", "user_email", "total_bytes_processed")
	}, nil},
	{"jobs_per_table.sql", func(jobs []Row, _ time.Time) []Row {
		count := map[[3]any]int64{}
		for _, j := range jobs {
			tables, _ := j["referenced_tables"].([]any)
			for _, t := range tables {
				t := t.(map[string]any)
				count[[3]any{t["project_id"], t["dataset_id"], t["table_id"]}]++
			}
		}
		var out []Row
		for k, n := range count {
			out = append(out, Row{"project_id": k[0], "dataset_id": k[1], "table_id": k[2], "num_references": n})
		}
		return out
	}, []string{"project_id", "dataset_id", "table_id"}},
	{"slot_usage_by_hour.sql", func(jobs []Row, now time.Time) []Row {
		return descending(groupSum(where(jobs, createdWithin(now, 7*24*time.Hour), isQuery, notScript),
			hourOf("end_time"), "time_window", "total_slot_ms", "avg_slots", 1000*60*60), "time_window")
	}, nil},
	{"jobs_by_label.sql", func(jobs []Row, now time.Time) []Row {
		type kv struct{ k, v string }
		count, billed := map[kv]int64{}, map[kv]any{}
		for _, j := range where(jobs, createdWithin(now, 7*24*time.Hour)) {
			labels, _ := j["labels"].([]any)
			for _, l := range labels {
				l := l.(map[string]any)
				k := kv{l["key"].(string), l["value"].(string)}
				count[k]++
				billed[k] = add(billed[k], j["total_bytes_billed"])
			}
		}
		var out []Row
		for k, n := range count {
			out = append(out, Row{"key": k.k, "value": k.v, "jobs": n, "bytes_billed": billed[k]})
		}
		slices.SortFunc(out, func(a, b Row) int {
			return cmp.Or(-cmp.Compare(a["jobs"].(int64), b["jobs"].(int64)), cmp.Compare(a["key"].(string), b["key"].(string)),
				cmp.Compare(a["value"].(string), b["value"].(string)))
		})
		return out
	}, nil},
	{"queued_time.sql", func(jobs []Row, now time.Time) []Row {
		var out []Row
		for _, j := range where(jobs, createdWithin(now, 24*time.Hour), func(j Row) bool { return j["start_time"] != nil }) {
			out = append(out, Row{"job_id": j["job_id"], "user_email": j["user_email"], "reservation_id": j["reservation_id"],
				"queued_ms": j["start_time"].(time.Time).Sub(j["creation_time"].(time.Time)).Milliseconds()})
		}
		slices.SortFunc(out, func(a, b Row) int {
			return cmp.Or(-cmp.Compare(a["queued_ms"].(int64), b["queued_ms"].(int64)), cmp.Compare(a["job_id"].(string), b["job_id"].(string)))
		})
		return out[:min(10, len(out))]
	}, nil},
}

// TestInformationSchemaExamples runs Google's INFORMATION_SCHEMA.JOBS
// example queries, and a few in their form, against the jobs view of a
// history replayed from a simulated organization's last hours, with only
// their FROM changed, and compares each answer with the same question asked
// in Go of the fold of every job in the log. It also checks the
// jobs_running and jobs_daily views the same way.
func TestInformationSchemaExamples(t *testing.T) {
	em := newEmulated(t)
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	sim := simulate(t, simulation.Config{Seed: 4, Rate: 0.3, Projects: 20, Start: start}, 2*time.Hour)
	log := newLog(t, sim.events...)
	s := em.sink(t, log, nil)
	if _, err := s.Replay(t.Context(), ReplayOptions{From: start.Add(-time.Hour), To: time.Now()}); err != nil {
		t.Fatal(err)
	}
	jobs := folded(t, s.v, log, sim.events)
	now := time.Now()
	for _, ex := range examples {
		t.Run(strings.TrimSuffix(ex.file, ".sql"), func(t *testing.T) {
			text, err := os.ReadFile(filepath.Join("testdata", "information_schema", ex.file))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Count(string(text), informationSchema) != 1 {
				t.Fatalf("%s does not read %s once", ex.file, informationSchema)
			}
			got := em.query(t, strings.Replace(string(text), informationSchema, em.b.Table(schema.JobsView), 1))
			want := ex.want(jobs, now)
			if len(want) == 0 {
				t.Fatalf("the data answers %s with nothing: the example checks nothing", ex.file)
			}
			compareAnswers(t, want, got, ex.sortBy)
		})
	}
	t.Run("jobs_running", func(t *testing.T) {
		got := em.query(t, "SELECT job_id FROM "+em.b.Table(schema.JobsRunningView))
		compareAnswers(t, project(where(jobs, func(j Row) bool { return j["state"] != "DONE" }), "job_id"), got, []string{"job_id"})
	})
	t.Run("jobs_daily", func(t *testing.T) {
		got := em.query(t, "SELECT * FROM "+em.b.Table(schema.JobsDailyView))
		compareAnswers(t, daily(where(jobs, func(j Row) bool { return j["state"] == "DONE" })), got, []string{"day", "project_id", "user_email"})
	})
}

// folded returns the current version of every job of evs, as column values.
func folded(t *testing.T, v *versioner, log Log, evs []events.Event) []Row {
	t.Helper()
	var out []Row
	err := log.ReadJobs(t.Context(), jobs(evs), func(key events.JobKey, evs []events.Event) error {
		j, d := v.version(key, evs)
		out = append(out, values(v.rows.message(&j, &d), v.rows.schema))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// daily is the jobs_daily view computed in Go.
func daily(done []Row) []Row {
	type key struct{ day, project, user any }
	rows := map[key]Row{}
	for _, j := range done {
		at, _ := j["creation_time"].(time.Time)
		if at.IsZero() {
			at = j["first_seen"].(time.Time)
		}
		k := key{civilDay(at), j["project_id"], j["user_email"]}
		r := rows[k]
		if r == nil {
			r = Row{"day": k.day, "project_id": k.project, "user_email": k.user, "jobs": int64(0), "failures": int64(0)}
			rows[k] = r
		}
		r["jobs"] = r["jobs"].(int64) + 1
		if e, _ := j["error_result"].(map[string]any); e["reason"] != nil {
			r["failures"] = r["failures"].(int64) + 1
		}
		r["total_bytes_billed"] = add(r["total_bytes_billed"], j["total_bytes_billed"])
		r["slot_hours"] = add(r["slot_hours"], j["total_slot_ms"])
		r["estimated_cost_usd"] = add(r["estimated_cost_usd"], j["estimated_cost_usd"])
	}
	var out []Row
	for _, r := range rows {
		r["slot_hours"] = divide(r["slot_hours"], 1000*60*60)
		out = append(out, r)
	}
	return out
}

// civilDay is a day as the BigQuery client returns a DATE.
func civilDay(t time.Time) civil.Date { return civil.DateOf(t.UTC()) }

// compareAnswers compares a query's rows with the Go answer: in order, or
// sorted by the given columns.
func compareAnswers(t *testing.T, want, got []Row, sortBy []string) {
	t.Helper()
	if sortBy != nil {
		byCols := func(a, b Row) int {
			for _, c := range sortBy {
				if d := compareValues(a[c], b[c]); d != 0 {
					return d
				}
			}
			return 0
		}
		slices.SortFunc(want, byCols)
		slices.SortFunc(got, byCols)
	}
	if diff := gocmp.Diff(want, got, gocmp.Comparer(func(a, b float64) bool { return same(a, b) })); diff != "" {
		t.Errorf("answer (-Go +BigQuery):\n%s", diff)
	}
}

// The helpers below ask the examples' questions of rows in Go, with SQL's
// NULLs: a comparison with NULL is not true, SUM skips them and is NULL
// over nothing but NULLs.

// where keeps the rows for which every condition holds.
func where(rows []Row, conds ...func(Row) bool) []Row {
	var out []Row
	for _, r := range rows {
		if !slices.ContainsFunc(conds, func(c func(Row) bool) bool { return !c(r) }) {
			out = append(out, r)
		}
	}
	return out
}

func createdWithin(now time.Time, d time.Duration) func(Row) bool {
	return func(r Row) bool { return within(r["creation_time"], now, d) }
}

func endedWithin(now time.Time, d time.Duration) func(Row) bool {
	return func(r Row) bool { return within(r["end_time"], now, d) }
}

func within(v any, now time.Time, d time.Duration) bool {
	t, ok := v.(time.Time)
	return ok && !t.Before(now.Add(-d)) && !t.After(now)
}

func after(v any, at time.Time) bool {
	t, ok := v.(time.Time)
	return ok && t.After(at)
}

func isQuery(r Row) bool   { return r["job_type"] == "QUERY" }
func notScript(r Row) bool { return r["statement_type"] != nil && r["statement_type"] != "SCRIPT" }

// project keeps the given columns of rows.
func project(rows []Row, cols ...string) []Row {
	out := make([]Row, len(rows))
	for i, r := range rows {
		out[i] = Row{}
		for _, c := range cols {
			out[i][c] = r[c]
		}
	}
	return out
}

// add is SQL's SUM of two values, each an int64 or a float64 or NULL.
func add(a, b any) any {
	switch {
	case b == nil:
		return a
	case a == nil:
		return b
	}
	if x, ok := a.(int64); ok {
		if y, ok := b.(int64); ok {
			return x + y
		}
		return float64(x) + b.(float64)
	}
	if y, ok := b.(int64); ok {
		return a.(float64) + float64(y)
	}
	return a.(float64) + b.(float64)
}

// divide is SQL's division of a SUM by a number: a FLOAT64, NULL for NULL.
func divide(v any, by float64) any {
	switch v := v.(type) {
	case int64:
		return float64(v) / by
	case float64:
		return v / by
	}
	return nil
}

// groupSum groups rows by key and sums a column into another, divided by
// by (SQL's / always gives a FLOAT64, so by 1 keeps an INT64 sum as is).
func groupSum(rows []Row, key func(Row) any, keyCol, col, sumCol string, by float64) []Row {
	sums := map[any]any{}
	var keys []any
	for _, r := range rows {
		k := key(r)
		if _, ok := sums[k]; !ok {
			keys = append(keys, k)
			sums[k] = nil
		}
		sums[k] = add(sums[k], r[col])
	}
	var out []Row
	for _, k := range keys {
		v := sums[k]
		if by != 1 {
			v = divide(v, by)
		}
		out = append(out, Row{keyCol: k, sumCol: v})
	}
	return out
}

// hourOf is TIMESTAMP_TRUNC(col, HOUR).
func hourOf(col string) func(Row) any {
	return func(r Row) any {
		if t, ok := r[col].(time.Time); ok {
			return t.Truncate(time.Hour)
		}
		return nil
	}
}

// descending sorts rows by col, descending, NULLs last, as ORDER BY col
// DESC does.
func descending(rows []Row, col string) []Row {
	slices.SortFunc(rows, func(a, b Row) int { return compareNullsLast(b[col], a[col]) })
	return rows
}

// compareNullsLast orders values with NULL below every other: b, a sorted
// by it is descending with NULLs last.
func compareNullsLast(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return compareValues(a, b)
}

func compareTimes(a, b any) int { return compareNullsLast(a, b) }

// compareValues orders two values of a column; NULL first.
func compareValues(a, b any) int {
	switch a := a.(type) {
	case nil:
		if b == nil {
			return 0
		}
		return -1
	case string:
		b, _ := b.(string)
		return cmp.Compare(a, b)
	case int64:
		b, _ := b.(int64)
		return cmp.Compare(a, b)
	case float64:
		b, _ := b.(float64)
		return cmp.Compare(a, b)
	case time.Time:
		b, _ := b.(time.Time)
		return a.Compare(b)
	case civil.Date:
		b, _ := b.(civil.Date)
		return a.Compare(b)
	}
	if b == nil {
		return 1
	}
	return 0
}
