// Package auditlog decodes BigQuery audit-log entries, in both the legacy
// AuditData format (v1, protoPayload.serviceData) and the
// BigQueryAuditMetadata format (v2, protoPayload.metadata), into job events.
//
// The audit-log JSON is read into wire types that hold only the fields the
// decoders use, in one pass, and converted to events.Event at this edge.
// The pass is made by github.com/go-json-experiment/json, set to read the
// wire types exactly as encoding/json does; encoding/json reads again only
// an entry that pass rejects, to say what is wrong with it.
// Decoding is lenient where Cloud Logging and common collectors are: int64
// values as JSON strings or numbers, integral floats such as 1.0, RFC 3339
// times with any number of fractional digits, lower-cased envelope keys and
// a bare protoPayload without its LogEntry envelope.
//
// Every entry gives exactly one of three results: events that pass
// events.Event.Validate; a *SkipError (errors.Is ErrSkip) for a well-formed
// entry that carries no job event; or an *Error (errors.Is
// events.ErrInvalid) for malformed input. Nothing panics, whatever the input.
//
// Values of the right shape that cannot be true follow the product's one
// plausibility rule (see events.Event.DropImplausible): the entry is kept
// and the value dropped, and DecodeAt returns what it dropped so that the
// caller warns and counts. A negative or out-of-range statistic (an integer
// beyond int64 reads as the limit of its sign, and is dropped as such), and
// a job time before 2010 or more than a day after the entry, read as
// unknown. An implausible timestamp gives way to the entry's
// receiveTimestamp or the job's times; an entry with no plausible time at
// all is malformed (ReasonNoTime). A value of the wrong shape (text where a
// number belongs, a fraction, a time that does not parse) is malformed, not
// implausible: the entry cannot be read as meant (ReasonBadField).
package auditlog

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// Decode decodes one LogEntry (JSON) into the job events it carries, as
// DecodeAt does now, without saying what the plausibility rule dropped.
func Decode(entry []byte) ([]events.Event, error) {
	evs, _, err := DecodeAt(entry, time.Now())
	return evs, err
}

// DecodeAt decodes one LogEntry (JSON) into the job events it carries.
//
// It returns one event per job-state entry: v1 jobservice.insert, query,
// getqueryresults and jobcompleted; v2 jobInsertion and jobChange; and a
// cancel call that names a whole job. The event ID derives from the
// entry's logName and insertId, or, for an entry without an insertId (a
// bare protoPayload), from a hash of its bytes; either way the same entry
// always yields the same ID.
//
// It applies the plausibility rule (see events.Event.DropImplausible) at
// now, and returns what it dropped: the event's time is the entry's
// timestamp, or, when that is missing or implausible, its receiveTimestamp,
// or the job's end, start or create time; the event's implausible facts
// are dropped.
func DecodeAt(entry []byte, now time.Time) ([]events.Event, []events.Dropped, error) {
	var w logEntry
	if err := unmarshalEntry(entry, &w); err != nil {
		return nil, nil, err
	}
	a, err := w.audit()
	if err != nil {
		return nil, nil, err
	}
	if a.ServiceName != "" && a.ServiceName != bigQueryService {
		// Before the payload's type, which another service's is not.
		return nil, nil, skip(SkipNotJob, "entry from %s, not BigQuery", truncate(a.ServiceName, 128))
	}
	if err := a.checkPayloadTypes(); err != nil {
		return nil, nil, err
	}
	ev, byOwner, err := decodePayload(&w, a)
	var dropped []events.Dropped
	if err == nil {
		dropped, err = w.finish(&ev, a, byOwner, entry, now)
	}
	if err != nil {
		return nil, nil, err
	}
	return []events.Event{ev}, dropped, nil
}

// decodePayload dispatches on the payload present, not on the method name:
// v2 table events share the job methods' names. It also reports whether
// the entry's caller (authenticationInfo) is who ran the job: not so for a
// read of a job's results, whose caller is the reader.
func decodePayload(w *logEntry, a *auditLog) (ev events.Event, byOwner bool, err error) {
	switch {
	case isCancel(a.MethodName):
		ev, err = cancelEvent(a, &w.Resource)
		return ev, false, err
	case a.ServiceData != nil && !(a.ServiceData.empty() && a.Metadata != nil):
		if a.Status.failed() && a.ServiceData.requestOnly() {
			// The request names the id the client wanted, which exists
			// only if the call succeeded.
			return events.Event{}, false, rejected(a)
		}
		return a.ServiceData.decode(a.MethodName)
	case a.Metadata != nil:
		ev, err = a.Metadata.decode(a.MethodName, &w.Resource)
		return ev, true, err
	case a.Status.failed():
		return events.Event{}, false, rejected(a)
	}
	return events.Event{}, false, skip(SkipNoPayload, "%s has neither serviceData nor metadata", first(a.MethodName, "audit entry"))
}

// checkPayloadTypes rejects a payload whose "@type" names neither format.
// An absent "@type" is tolerated: the member name already says which.
func (a *auditLog) checkPayloadTypes() error {
	if d := a.ServiceData; d != nil && d.Type != "" && d.Type != v1Type {
		return invalid(ReasonUnknownPayload, nil, "serviceData is a %q, not AuditData", truncate(d.Type, 128))
	}
	if m := a.Metadata; m != nil && m.Type != "" && m.Type != v2Type {
		return invalid(ReasonUnknownPayload, nil, "metadata is a %q, not BigQueryAuditMetadata", truncate(m.Type, 128))
	}
	return nil
}

func rejected(a *auditLog) *SkipError {
	return skip(SkipRejected, "%s failed with code %s: %s", first(a.MethodName, "call"), a.Status.Code, truncate(a.Status.Message, 256))
}

func isCancel(method string) bool {
	return method == "jobservice.cancel" || strings.HasSuffix(method, "JobService.CancelJob")
}

// cancelEvent reads a jobs.cancel call, which names its job only in
// resourceName. v1 cancel entries carry no location, so they are skipped.
func cancelEvent(a *auditLog, res *resource) (events.Event, error) {
	if a.Status.failed() {
		return events.Event{}, rejected(a)
	}
	p, ok := parseJobPath(a.ResourceName)
	loc := first(res.Labels.Location, p.location)
	if !ok || loc == "" {
		return events.Event{}, skip(SkipNotJob, "%s on %q names no job location", a.MethodName, truncate(a.ResourceName, 128))
	}
	format := "v2"
	if strings.HasPrefix(a.MethodName, "jobservice.") {
		format = "v1"
	}
	return events.Event{
		Kind:   events.KindCancelRequested,
		Job:    events.JobKey{Project: p.project, Location: loc, JobID: p.id},
		Source: events.Source{Format: format, Method: a.MethodName},
	}, nil
}

// finish adds what the envelope knows to a decoded event (identity, time,
// principal when byOwner says the caller ran the job, source), applies the
// plausibility rule at now and checks that the result is fit for the log.
// It returns what the rule dropped.
func (w *logEntry) finish(ev *events.Event, a *auditLog, byOwner bool, raw []byte, now time.Time) ([]events.Dropped, error) {
	ev.ID = eventID(w.LogName, w.InsertID, raw)
	switch {
	case ev.Kind == events.KindCancelRequested:
		// The caller of jobs.cancel is who asked, not the job's owner.
		ev.CancelRequestedBy = a.principal()
	case byOwner:
		ev.Principal = a.principal()
	}
	ev.Source.LogName, ev.Source.InsertID = w.LogName, w.InsertID
	ev.Job.Project = first(ev.Job.Project, w.Resource.Labels.ProjectID)
	ev.Job.Location = first(ev.Job.Location, w.Resource.Labels.Location)
	if err := checkKey(ev.Job, a); err != nil {
		return nil, err
	}
	t, dropped, err := w.eventTime(&ev.Facts, now)
	if err != nil {
		return nil, err
	}
	ev.Time = t
	if ev.Kind == events.KindCancelRequested {
		ev.CancelRequestTime = t
	}
	dropped = append(dropped, ev.DropImplausible()...)
	if err := ev.Validate(); err != nil {
		return nil, invalid(ReasonBadField, err, "decoded event unfit for the log")
	}
	return dropped, nil
}

// checkKey says why a job key is incomplete. A call that failed before it
// made a job is skipped, not rejected as malformed.
func checkKey(k events.JobKey, a *auditLog) error {
	switch {
	case k.JobID == "" && a.Status.failed():
		return rejected(a)
	case k.JobID == "":
		return invalid(ReasonNoJobID, nil, "%s names no job id", first(a.MethodName, "entry"))
	case k.Project == "":
		return invalid(ReasonNoJobID, nil, "job %s has no project", k.JobID)
	case k.Location == "":
		return invalid(ReasonNoJobID, nil, "job %s:%s has no location", k.Project, k.JobID)
	}
	return nil
}

// eventTime is the first plausible time at now of the LogEntry timestamp,
// the receive time, and the job's end, start and create time. It returns
// the entry's implausible times it passed over (the job's are the
// plausibility rule's to drop).
func (w *logEntry) eventTime(f *events.Facts, now time.Time) (time.Time, []events.Dropped, error) {
	var c converter
	var dropped []events.Dropped
	candidates := [...]struct {
		field string
		t     time.Time
	}{
		{"timestamp", c.time("timestamp", w.Timestamp)}, {"receiveTimestamp", c.time("receiveTimestamp", w.ReceiveTimestamp)},
		{"", f.EndTime}, {"", f.StartTime}, {"", f.CreateTime},
	}
	if c.err != nil {
		return time.Time{}, nil, c.err
	}
	for _, cand := range candidates {
		if cand.t.IsZero() {
			continue
		}
		reason := events.ImplausibleTime(cand.t, now)
		if reason == "" {
			return cand.t, dropped, nil
		}
		if cand.field != "" {
			dropped = append(dropped, events.Dropped{Field: cand.field, Reason: reason, Value: cand.t.Format(time.RFC3339Nano)})
		}
	}
	return time.Time{}, nil, invalid(ReasonNoTime, nil, "no plausible timestamp, receiveTimestamp or job time (%s)", droppedText(dropped))
}

// droppedText lists drops for an error message.
func droppedText(dropped []events.Dropped) string {
	if len(dropped) == 0 {
		return "none at all"
	}
	parts := make([]string, len(dropped))
	for i, d := range dropped {
		parts[i] = d.String()
	}
	return strings.Join(parts, ", ")
}

// eventID derives the event's identity from logName and insertId, which
// Cloud Logging keeps unique per entry; without an insertId, from a hash of
// the entry's bytes.
func eventID(logName, insertID string, raw []byte) string {
	if insertID == "" {
		sum := sha256.Sum256(raw)
		insertID = "sha256:" + hex.EncodeToString(sum[:])
	}
	return events.AuditEventID(logName, insertID, 0)
}

// jobError converts an error status, nil when it is empty.
func (s *rpcStatus) jobError() *events.JobError {
	if s == nil || s.empty() {
		return nil
	}
	return &events.JobError{Code: string(s.Code), Message: s.Message}
}

func parseState(s string) events.State {
	switch st := events.State(s); st {
	case events.StatePending, events.StateRunning, events.StateDone:
		return st
	}
	return events.StateUnknown
}

// first returns the first non-empty string.
func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// methodKey joins a method name and an event key, as Source.Method.
func methodKey(method, key string) string {
	if method == "" {
		return key
	}
	return method + ":" + key
}

func nonEmptyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
