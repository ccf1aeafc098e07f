package simulation

import (
	"strconv"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// failure is an error a job ends with, as BigQuery reports it: a reason
// and location in the REST API, a google.rpc code in audit entries.
type failure struct {
	reason   string // REST errorResult.reason: invalidQuery, notFound, stopped, ...
	location string // REST errorResult.location, if any
	message  string
	// v1Code and v2Code are the numeric codes of the legacy and the new
	// audit format: the same canonical code, except that the one v1 entry
	// seen with a syntax error carries 11 where v2 carries 3.
	v1Code, v2Code int
	// late is set for an error met while running, after some work.
	late bool
	// unparsed is set when BigQuery failed before it knew the statement.
	unparsed bool
}

// canonicalNames are the google.rpc.Code names protoPayload.status
// carries in v2 entries of failed jobs.
var canonicalNames = map[int]string{
	1: "CANCELLED", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND", 6: "ALREADY_EXISTS",
	7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 11: "OUT_OF_RANGE", 13: "INTERNAL",
}

// cancelled is the error of a job a user cancelled.
var cancelled = failure{reason: "stopped", message: "Job execution was cancelled: User requested cancellation", v1Code: 1, v2Code: 1}

// Failure rates per kind of job.
const (
	queryFailureRate    = 0.025
	loadFailureRate     = 0.04
	transferFailureRate = 0.01
)

// planFailure decides whether and how the job will fail, and at which
// share of its run time.
func planFailure(r *rng, j *job, shape string) (*failure, float64) {
	if j.runFor > maxRunTime {
		return &failure{reason: "timeout", v1Code: 4, v2Code: 4, late: true,
				message: "Operation timed out after 6.0 hours. Consider reducing the amount of work performed by your operation so that it can complete within this limit."},
			float64(maxRunTime) / float64(j.runFor)
	}
	switch shape {
	case events.JobTypeLoad:
		if r.chance(loadFailureRate) {
			return loadFailure(r, j), r.uniform(0.2, 0.9)
		}
	case events.JobTypeExtract, events.JobTypeCopy:
		if r.chance(transferFailureRate) {
			t := j.sql.refs[0]
			return &failure{reason: "notFound", message: "Not found: Table " + colonName(t), v1Code: 5, v2Code: 5}, 0
		}
	default:
		if r.chance(queryFailureRate) {
			return queryFailure(r, j), r.uniform(0.2, 0.95)
		}
	}
	return nil, 0
}

// queryFailure draws the error a query fails with.
func queryFailure(r *rng, j *job) *failure {
	pos := " at [" + strconv.Itoa(r.between(1, 12)) + ":" + strconv.Itoa(r.between(1, 40)) + "]"
	if f := queryFailures.pick(r)(r, j, pos); f != nil {
		return f
	}
	return resourcesExceeded(r, j, pos)
}

// failureFunc builds one kind of failure for a job, or nil when the kind
// does not apply to it.
type failureFunc func(r *rng, j *job, pos string) *failure

// queryFailures are the errors queries fail with, by how often.
var queryFailures = newWeighted(
	weight[failureFunc]{syntaxError, 30}, weight[failureFunc]{unrecognizedName, 20}, weight[failureFunc]{badSignature, 8},
	weight[failureFunc]{tableNotFound, 12}, weight[failureFunc]{tableAccessDenied, 6}, weight[failureFunc]{bytesBilledLimit, 4},
	weight[failureFunc]{resourcesExceeded, 13}, weight[failureFunc]{divisionByZero, 5}, weight[failureFunc]{internalError, 2},
)

func syntaxError(r *rng, _ *job, pos string) *failure {
	word := pick(r, []string{"keyword FROM", "keyword SELECT", "end of input", "\")\"", "keyword WHERE"})
	return &failure{reason: "invalidQuery", location: "query", v1Code: 11, v2Code: 3, unparsed: true,
		message: "Syntax error: Unexpected " + word + pos}
}

func unrecognizedName(r *rng, j *job, pos string) *failure {
	col := pick(r, j.project.domain.tables).dim
	return &failure{reason: "invalidQuery", location: "query", v1Code: 11, v2Code: 3,
		message: "Unrecognized name: " + col[:len(col)-1] + "; Did you mean " + col + "?" + pos}
}

func badSignature(_ *rng, _ *job, pos string) *failure {
	return &failure{reason: "invalidQuery", location: "query", v1Code: 11, v2Code: 3,
		message: "No matching signature for operator = for argument types: STRING, INT64. Supported signature: ANY = ANY" + pos}
}

func tableNotFound(_ *rng, j *job, _ string) *failure {
	if len(j.sql.refs) == 0 {
		return nil
	}
	return &failure{reason: "notFound", v1Code: 5, v2Code: 5,
		message: "Not found: Table " + colonName(j.sql.refs[0]) + " was not found in location " + j.key.Location}
}

func tableAccessDenied(_ *rng, j *job, _ string) *failure {
	if len(j.sql.refs) == 0 {
		return nil
	}
	t := colonName(j.sql.refs[0])
	return &failure{reason: "accessDenied", v1Code: 7, v2Code: 7,
		message: "Access Denied: Table " + t + ": User does not have permission to query table " + t + ", or perhaps it does not exist."}
}

func bytesBilledLimit(r *rng, j *job, _ string) *failure {
	if j.statement != "SELECT" {
		return nil
	}
	limit := int64(10) << 30
	return &failure{reason: "bytesBilledLimitExceeded", v1Code: 3, v2Code: 3,
		message: "Query exceeded limit for bytes billed: " + strconv.FormatInt(limit, 10) + ". " +
			strconv.FormatInt(limit*int64(r.between(2, 9)), 10) + " or higher required."}
}

func resourcesExceeded(r *rng, _ *job, _ string) *failure {
	return &failure{reason: "resourcesExceeded", v1Code: 8, v2Code: 8, late: true,
		message: "Resources exceeded during query execution: The query could not be executed in the allotted memory. Peak usage: " +
			strconv.Itoa(r.between(101, 180)) + "% of limit.\nTop memory consumer(s):\n  ORDER BY operations: 97%\n  other/unattributed: 3%\n"}
}

func divisionByZero(r *rng, _ *job, _ string) *failure {
	return &failure{reason: "invalidQuery", v1Code: 11, v2Code: 3, late: true,
		message: "Query error: division by zero: " + strconv.Itoa(r.between(1, 9999)) + " / 0"}
}

func internalError(r *rng, _ *job, _ string) *failure {
	return &failure{reason: "internalError", v1Code: 13, v2Code: 13, late: true,
		message: "An internal error occurred and the request could not be completed. This is usually caused by a transient issue. " +
			"Retrying the job with back-off as described in the BigQuery SLA should solve the problem: https://cloud.google.com/bigquery/sla. " +
			"If the error continues to occur please contact support at https://cloud.google.com/support. Error: " + strconv.Itoa(r.between(1000000, 9999999))}
}

func loadFailure(r *rng, j *job) *failure {
	if len(j.sourceURIs) > 0 && r.chance(0.3) {
		return &failure{reason: "notFound", v1Code: 5, v2Code: 5, message: "Not found: URI " + j.sourceURIs[0]}
	}
	return &failure{reason: "invalid", v1Code: 3, v2Code: 3, late: true,
		message: "Error while reading data, error message: CSV table encountered too many errors, giving up. Rows: " +
			strconv.Itoa(r.between(1, 500000)) + "; errors: 1. Please look into the errors[] collection for more details."}
}

// scriptFailure is how a script reports the failure of one of its statements.
func scriptFailure(child *failure) *failure {
	f := *child
	f.message = "Query error: " + child.message
	return &f
}

// colonName is a table as BigQuery's error messages name it.
func colonName(t tableRef) string { return t.project + ":" + t.dataset + "." + t.table }

// failTime is when a job with a planned failure stops, counted from start.
func failTime(runFor time.Duration, f *failure, at float64) time.Duration {
	switch {
	case f.unparsed:
		return 0
	case !f.late:
		return min(runFor, time.Duration(float64(120*time.Millisecond)*(1+at)))
	}
	return time.Duration(at * float64(runFor))
}
