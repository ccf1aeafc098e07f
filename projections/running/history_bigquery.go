package running

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bqobserver/bqobserver/events/jobfields"
)

// The history's BigQuery side: where the history table's jobs view is, a
// console link to it, and the SQL over it that lists what a history request
// lists. The console has no documented way to open a query tab filled with
// SQL (its create-new-query-tab URL is undocumented), so the page links to
// the view and offers the SQL to copy.

// historyView is the view of the history with one row per job, its latest
// version (schema/).
const historyView = "jobs"

// bigQueryLink is what a history answer says about BigQuery.
type bigQueryLink struct {
	project, dataset string
	consoleURL, sql  string
}

func (c *HistoryConfig) bigQuery(q *historyQuery) bigQueryLink {
	l := bigQueryLink{project: c.BigQueryProject, dataset: c.BigQueryDataset}
	table := l.dataset + "." + historyView
	if l.project != "" {
		table = l.project + "." + table
		l.consoleURL = "https://console.cloud.google.com/bigquery?" + url.Values{
			"project": {l.project}, "p": {l.project}, "d": {l.dataset}, "t": {historyView}, "page": {"table"},
		}.Encode()
	}
	l.sql = historySQL(table, q)
	return l
}

// column is the history column of each job field, by Go name (jobfields).
var column = func() map[string]string {
	m := make(map[string]string, len(jobfields.Fields))
	for _, f := range jobfields.Fields {
		m[f.Name] = f.Column.Name
	}
	return m
}()

// dimFields are the job fields of the list's dimensions.
var dimFields = [numDims]string{
	dimProject: "Project", dimLocation: "Location", dimUser: "Principal",
	dimReservation: "Reservation", dimType: "JobType", dimStatement: "StatementType",
}

// selected are the fields the SQL selects.
var selected = []string{
	"Project", "Location", "JobID", "Principal", "JobType", "StatementType", "CreateTime", "StartTime", "EndTime",
	"SlotMs", "BytesProcessed", "BytesBilled", "Reservation", "Error", "Labels", "Query",
}

// historySQL returns a query over table (the jobs view) for the jobs q
// lists, in q's order: finished, ended within q's range, meeting its
// filters and search. Equality ignores case as the API's does, and
// CONTAINS_SUBSTR searches as the API does, but without regard to accents
// either. A job whose end time no event knew is listed by the API at its
// first DONE event; the view has no end time for it.
func historySQL(table string, q *historyQuery) string {
	f := &q.list.filter
	cols := make([]string, len(selected))
	for i, name := range selected {
		cols[i] = column[name]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s\nFROM %s\nWHERE %s\nORDER BY %s\n", strings.Join(cols, ", "), sqlFrom(table, len(f.terms) > 0),
		strings.Join(sqlConditions(q), "\n  AND "), sqlOrder(q.list.order))
	return b.String()
}

// sqlFrom is the FROM clause: the view itself or, for a search, the view
// with the text the API searches, one string a field, table and label.
func sqlFrom(table string, search bool) string {
	ref := "`" + strings.NewReplacer(`\`, `\\`, "`", "\\`").Replace(table) + "`"
	if !search {
		return ref
	}
	name := func(c string) string {
		return fmt.Sprintf("CONCAT(%[1]s.project_id, '.', %[1]s.dataset_id, '.', %[1]s.table_id)", c)
	}
	tables := fmt.Sprintf("ARRAY(SELECT %s FROM UNNEST(ARRAY_CONCAT([%s], %s, %s)) AS t WHERE t IS NOT NULL)",
		name("t"), column["DestinationTable"], column["ReferencedTables"], column["SourceTables"])
	labels := fmt.Sprintf("ARRAY(SELECT CONCAT(l.key, '=', l.value) FROM UNNEST(%s) AS l)", column["Labels"])
	texts := fmt.Sprintf("[%s, IFNULL(%s, ''), IFNULL(%s, '')]", column["JobID"], column["Principal"], column["Query"])
	return fmt.Sprintf("(\n  SELECT *, ARRAY_CONCAT(%s,\n    %s,\n    %s) AS search_text\n  FROM %s)", texts, tables, labels, ref)
}

// sqlConditions are the WHERE clause's conditions for q.
func sqlConditions(q *historyQuery) []string {
	f := &q.list.filter
	end := column["EndTime"]
	conds := []string{
		column["State"] + " = 'DONE'",
		fmt.Sprintf("%s >= %s", end, sqlTimestamp(q.from)),
		fmt.Sprintf("%s < %s", end, sqlTimestamp(q.to)),
	}
	for i, v := range f.dims {
		if v != "" {
			conds = append(conds, fmt.Sprintf("LOWER(%s) = %s", column[dimFields[i]], sqlString(strings.ToLower(v))))
		}
	}
	if owner, ok := f.scope.Owner(); ok {
		conds = append(conds, fmt.Sprintf("LOWER(%s) = %s", column["Principal"], sqlString(strings.ToLower(owner))))
	}
	switch f.state {
	case codeSucceeded:
		conds = append(conds, column["Error"]+" IS NULL")
	case codeFailed:
		conds = append(conds, column["Error"]+" IS NOT NULL")
	}
	for _, l := range f.labels {
		conds = append(conds, fmt.Sprintf("EXISTS (SELECT 1 FROM UNNEST(%s) AS l WHERE l.key = %s AND l.value = %s)",
			column["Labels"], sqlString(l.key), sqlString(l.value)))
	}
	if f.minRunning > 0 {
		conds = append(conds, fmt.Sprintf("%s >= %d", sqlRunMs, f.minRunning.Milliseconds()))
	}
	for _, t := range f.terms {
		conds = append(conds, fmt.Sprintf("EXISTS (SELECT 1 FROM UNNEST(search_text) AS s WHERE CONTAINS_SUBSTR(s, %s))", sqlString(t)))
	}
	return conds
}

// sqlRunMs is how long a job ran, in milliseconds.
var sqlRunMs = fmt.Sprintf("TIMESTAMP_DIFF(%s, %s, MILLISECOND)", column["EndTime"], column["StartTime"])

// sqlOrder is the ORDER BY clause of o, with the API's tie-break.
func sqlOrder(o order) string {
	by := map[sortKey]string{
		sortEnded: column["EndTime"], sortRunning: sqlRunMs, sortCreated: column["CreateTime"],
		sortStarted: column["StartTime"], sortSlotMs: column["SlotMs"], sortBytes: column["BytesProcessed"],
	}[o.key]
	dir := "ASC"
	if o.desc {
		dir = "DESC"
	}
	return fmt.Sprintf("%s %s NULLS LAST, %s, %s, %s", by, dir, column["Project"], column["Location"], column["JobID"])
}

// sqlTimestamp is a GoogleSQL timestamp literal of t, to the microsecond.
func sqlTimestamp(t time.Time) string {
	return "TIMESTAMP '" + t.UTC().Format("2006-01-02 15:04:05.999999") + " UTC'"
}

// sqlString is a GoogleSQL string literal of s.
func sqlString(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch {
		case r == '\\' || r == '\'':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatInt(int64(r)|0x100, 16)[1:])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}
