// Package events is the domain vocabulary of a BigQuery job's life: the events
// that are appended to the event log, and the fold that turns a job's events,
// in any order and with any duplicates, into its current state.
//
// Wire shapes (audit-log JSON) live in package auditlog and storage shapes
// (Bigtable rows) in log_bigtable.go; both convert to and from the types here.
//
// A job's fields are described once, in package jobfields; Facts, Job, the
// fold's registers and the stored form of the facts are generated from it.
package events

//go:generate go run ./internal/genjob events

import (
	"fmt"
	"strings"
	"time"
)

// Kind names what happened to a job.
type Kind string

// The kinds of event. Inserted, StateChanged and Completed come from audit
// logs; the others are derived by enrichment and operators.
const (
	KindInserted        Kind = "inserted"
	KindStateChanged    Kind = "state_changed"
	KindCompleted       Kind = "completed"
	KindProgress        Kind = "progress_observed"
	KindReconciled      Kind = "reconciled"
	KindCancelRequested Kind = "cancel_requested"
)

// State is a BigQuery job state.
type State string

// Job states, in the only order a job can move through them.
const (
	StateUnknown State = ""
	StatePending State = "PENDING"
	StateRunning State = "RUNNING"
	StateDone    State = "DONE"
)

// rank orders states so that a fold never moves a job backwards.
func (s State) rank() int {
	switch s {
	case StatePending:
		return 1
	case StateRunning:
		return 2
	case StateDone:
		return 3
	}
	return 0
}

// Job types, normalised: v2's IMPORT and EXPORT become LOAD and EXTRACT.
const (
	JobTypeQuery   = "QUERY"
	JobTypeLoad    = "LOAD"
	JobTypeExtract = "EXTRACT"
	JobTypeCopy    = "COPY"
)

// JobKey identifies a BigQuery job. Job ids are unique within a project and
// location, so all three are needed.
type JobKey struct {
	Project  string `json:"project"`
	Location string `json:"location"`
	JobID    string `json:"job_id"`
}

// String returns the key as BigQuery prints it: project:location.job_id.
func (k JobKey) String() string { return k.Project + ":" + k.Location + "." + k.JobID }

// Validate reports whether every part of the key is present and free of the
// separators the product uses: '#' in the event log's row keys, '/' in the
// list's job ids and the API's paths (project/location/job_id), where two
// keys with '/' inside a part could name the same job. BigQuery allows
// neither in a project, location or job id.
func (k JobKey) Validate() error {
	var missing []string
	for name, v := range map[string]string{"project": k.Project, "location": k.Location, "job id": k.JobID} {
		if v == "" {
			missing = append(missing, name)
		}
		if strings.ContainsAny(v, "#/\x00") {
			return fmt.Errorf("job key %s: %s contains a reserved character", k, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("job key %s: missing %s", k, strings.Join(missing, ", "))
	}
	return nil
}

// JobError is the error a failed (or cancelled) job finished with.
type JobError struct {
	// Code is BigQuery's error reason (v1, API: "invalidQuery", "stopped")
	// or the canonical gRPC code as a string (v2: "3").
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Source says where an event came from.
type Source struct {
	// Format is "v1" (AuditData), "v2" (BigQueryAuditMetadata), "api"
	// (enrichment) or "operator".
	Format string `json:"format"`
	// Method is the audit methodName and event key, or the API call.
	Method   string `json:"method,omitempty"`
	LogName  string `json:"log_name,omitempty"`
	InsertID string `json:"insert_id,omitempty"`
}

// Event is one thing that happened to one job. Events are immutable once
// appended to the log.
type Event struct {
	// ID is deterministic: the same audit entry always yields the same ID,
	// which is what makes appending idempotent.
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	Job  JobKey `json:"job"`
	// Time is when the event happened: the LogEntry timestamp for audit
	// events, the observation time for derived ones.
	Time time.Time `json:"time"`
	// State is the job's state as of this event.
	State State     `json:"state,omitempty"`
	Error *JobError `json:"error,omitempty"`
	Facts
	Source Source `json:"source"`
}

// CancelAnswerFailed begins the CancelAnswer of a request to cancel a job
// that BigQuery refused or did not answer; the rest is the error.
const CancelAnswerFailed = "error: "

// failed reports whether e records a request that did not take effect: a
// request to cancel the job that BigQuery refused or did not answer. Such
// an event is kept, for who asked and what BigQuery answered, but sets no
// flag of its kind (a job is not "cancel requested" by a refused request).
func (e *Event) failed() bool {
	return e.Kind == KindCancelRequested && strings.HasPrefix(e.CancelAnswer, CancelAnswerFailed)
}

// Validate reports what makes e unfit for the log.
func (e *Event) Validate() error {
	var problems []string
	if e.ID == "" {
		problems = append(problems, "no id")
	}
	if e.Kind == "" {
		problems = append(problems, "no kind")
	}
	if e.Time.IsZero() {
		problems = append(problems, "no time")
	}
	if err := e.Job.Validate(); err != nil {
		problems = append(problems, err.Error())
	} else if err := checkKeys(e); err != nil {
		// The event log's limits: time within its row keys' range, id
		// and job key short enough for a row key.
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid event %q: %s", e.ID, strings.Join(problems, "; "))
	}
	return nil
}

// Int64 returns a pointer to v, for filling optional numeric facts.
func Int64(v int64) *int64 { return &v }

// Bool returns a pointer to v, for filling optional boolean facts.
func Bool(v bool) *bool { return &v }
