package auditlog

import (
	"errors"
	"fmt"

	"github.com/bqobserver/bqobserver/events"
)

// ErrSkip marks a well-formed entry that carries no job event. Every
// *SkipError matches it with errors.Is; it never matches events.ErrInvalid.
var ErrSkip = errors.New("entry skipped")

// SkipReason names why a well-formed entry yields no event. The values are
// stable identifiers, fit for metric labels.
type SkipReason string

// The reasons an entry is skipped.
const (
	// SkipDryRun marks a dry run: BigQuery validated the job but never ran it.
	SkipDryRun SkipReason = "dry_run"
	// SkipNotJob marks an entry about something other than a job's state:
	// table reads and changes, dataset and table metadata, deletions, a
	// cancel call that does not name a whole job, another service.
	SkipNotJob SkipReason = "not_a_job_event"
	// SkipRejected marks an API call that failed before any job existed
	// (non-zero protoPayload.status and no job id).
	SkipRejected SkipReason = "rejected_call"
	// SkipNoPayload marks an audit entry with neither serviceData nor
	// metadata, and a successful status.
	SkipNoPayload SkipReason = "no_payload"
)

// SkipError says why a well-formed entry was skipped.
// errors.Is(err, ErrSkip) is true for every SkipError.
type SkipError struct {
	Reason SkipReason
	Detail string
}

// Error describes the skip.
func (e *SkipError) Error() string {
	return fmt.Sprintf("entry skipped (%s): %s", e.Reason, e.Detail)
}

// Is reports whether target is ErrSkip.
func (e *SkipError) Is(target error) bool { return target == ErrSkip }

func skip(reason SkipReason, format string, args ...any) *SkipError {
	return &SkipError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// ErrorReason names what is wrong with a malformed entry. The values are
// stable identifiers, fit for metric labels and dead-letter attributes.
type ErrorReason string

// The ways an entry can be malformed.
const (
	// ReasonBadJSON means the input is not valid JSON, or is empty.
	ReasonBadJSON ErrorReason = "bad_json"
	// ReasonNotAuditEntry means valid JSON, but neither a LogEntry with an
	// AuditLog protoPayload nor a bare AuditLog.
	ReasonNotAuditEntry ErrorReason = "not_audit_entry"
	// ReasonUnknownPayload means the serviceData or metadata "@type" names
	// neither BigQuery audit format.
	ReasonUnknownPayload ErrorReason = "unknown_payload"
	// ReasonNoJobID means a job event whose identity (project, location or
	// job id) is incomplete.
	ReasonNoJobID ErrorReason = "no_job_id"
	// ReasonNoTime means the entry carries no timestamp of any kind.
	ReasonNoTime ErrorReason = "no_time"
	// ReasonBadField means a field has the wrong shape or an unusable value.
	ReasonBadField ErrorReason = "bad_field"
	// ReasonBadEnvelope means a Pub/Sub push body that is not an envelope
	// with a message, or whose data is not base64.
	ReasonBadEnvelope ErrorReason = "bad_envelope"
	// ReasonBodyTooLarge means a Pub/Sub push body larger than the push
	// intake takes: not an audit entry, which is at most 256 KB.
	ReasonBodyTooLarge ErrorReason = "body_too_large"
)

// Error reports malformed input. errors.Is(err, events.ErrInvalid) is true
// for every Error, so pipelines dead-letter it instead of retrying.
type Error struct {
	Reason ErrorReason
	Detail string
	// Err is the underlying cause, if any (a JSON or parse error).
	Err error
}

// Error describes what is wrong.
func (e *Error) Error() string {
	msg := fmt.Sprintf("malformed audit entry (%s): %s", e.Reason, e.Detail)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is events.ErrInvalid.
func (e *Error) Is(target error) bool { return target == events.ErrInvalid }

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

func invalid(reason ErrorReason, err error, format string, args ...any) *Error {
	return &Error{Reason: reason, Detail: fmt.Sprintf(format, args...), Err: err}
}
