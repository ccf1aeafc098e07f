package running

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/bqobserver/bqobserver/events"
)

// appendJob appends the JSON of jobOf(&view{*j, stale}, preview) to b:
// what encoding/json writes for it, byte for byte but for strings, which
// take their shortest form (<, >, &, U+2028 and U+2029 are not escaped), as
// a test holds it to. It does so without reflection, and without allocating
// unless a string is not valid UTF-8: lists and streams encode many jobs,
// often under the store's read lock. It reports false, leaving b as it was,
// for a job encoding/json would refuse (a time outside years 0-9999).
func appendJob(b []byte, j *events.Job, stale bool, preview int) ([]byte, bool) {
	for _, t := range []time.Time{j.CreateTime, j.StartTime, j.EndTime, j.FirstSeen, j.LastSeen} {
		if y := t.Year(); y < 0 || y > 9999 {
			return b, false
		}
	}
	b = appendHead(b, j, stale)
	b = appendText(b, j, preview)
	b = appendNumbers(b, j)
	b = appendTime(b, "first_seen", j.FirstSeen)
	b = appendTime(b, "last_seen", j.LastSeen)
	b = appendTrue(b, "cancel_requested", j.CancelRequested)
	b = appendTrue(b, "reconciled", j.Reconciled)
	return append(b, '}'), true
}

// appendHead writes the key, state, stale flag and error.
func appendHead(b []byte, j *events.Job, stale bool) []byte {
	b = appendKey(append(b, `{"key":`...), j.Key)
	b = append(b, `,"state":`...)
	b = appendString(b, string(j.State))
	b = append(b, `,"stale":`...)
	b = strconv.AppendBool(b, stale)
	if j.Error != nil {
		b = append(b, `,"error":{`...)
		sep := ""
		if j.Error.Code != "" {
			b = appendString(append(b, `"code":`...), j.Error.Code)
			sep = ","
		}
		if j.Error.Message != "" {
			b = appendString(append(b, sep+`"message":`...), j.Error.Message)
		}
		b = append(b, '}')
	}
	return b
}

func appendKey(b []byte, k events.JobKey) []byte {
	b = appendString(append(b, `{"project":`...), k.Project)
	b = appendString(append(b, `,"location":`...), k.Location)
	b = appendString(append(b, `,"job_id":`...), k.JobID)
	return append(b, '}')
}

// appendText writes the facts that are text, from principal to parent job.
func appendText(b []byte, j *events.Job, preview int) []byte {
	b = appendStr(b, "principal", j.Principal)
	b = appendStr(b, "job_type", j.JobType)
	b = appendStr(b, "statement_type", j.StatementType)
	b = appendStr(b, "priority", j.Priority)
	b = appendQuery(b, j.Query, j.QueryTruncated, preview)
	if len(j.Labels) > 0 {
		b = append(b, `,"labels":{`...)
		keys := make([]string, 0, 16) // on the stack for a job's few labels
		keys = slices.AppendSeq(keys, maps.Keys(j.Labels))
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(appendString(b, k), ':')
			b = appendString(b, j.Labels[k])
		}
		b = append(b, '}')
	}
	b = appendStr(b, "reservation", j.Reservation)
	b = appendStrs(b, "referenced_tables", j.ReferencedTables)
	b = appendStr(b, "destination_table", j.DestinationTable)
	b = appendStrs(b, "source_tables", j.SourceTables)
	b = appendStrs(b, "source_uris", j.SourceURIs)
	b = appendStrs(b, "destination_uris", j.DestinationURIs)
	return appendStr(b, "parent_job_id", j.ParentJobID)
}

// appendNumbers writes the times and numbers, from create time to units.
func appendNumbers(b []byte, j *events.Job) []byte {
	b = appendTime(b, "create_time", j.CreateTime)
	b = appendTime(b, "start_time", j.StartTime)
	b = appendTime(b, "end_time", j.EndTime)
	b = appendInt(b, "bytes_processed", j.BytesProcessed)
	b = appendInt(b, "bytes_billed", j.BytesBilled)
	b = appendInt(b, "slot_ms", j.SlotMs)
	b = appendInt(b, "billing_tier", j.BillingTier)
	if j.CacheHit != nil {
		b = strconv.AppendBool(append(b, `,"cache_hit":`...), *j.CacheHit)
	}
	b = appendInt(b, "output_rows", j.OutputRows)
	b = appendInt(b, "active_units", j.ActiveUnits)
	b = appendInt(b, "completed_units", j.CompletedUnits)
	return appendInt(b, "pending_units", j.PendingUnits)
}

// appendJobOrError appends a job's JSON, or, for a job JSON cannot encode,
// an object saying why.
func appendJobOrError(b []byte, j *events.Job, stale bool, preview int) []byte {
	if out, ok := appendJob(b, j, stale, preview); ok {
		return out
	}
	_, err := json.Marshal(jobOf(&view{job: *j, stale: stale}, preview))
	msg := "cannot encode the job"
	if err != nil {
		msg = err.Error()
	}
	b = appendKey(append(b, `{"key":`...), j.Key)
	b = append(b, `,"encoding_error":`...)
	return append(appendString(b, msg), '}')
}

// appendQuery writes the query text, shortened to preview bytes if longer.
func appendQuery(b []byte, q string, truncated bool, preview int) []byte {
	shortened := preview > 0 && len(q) > preview
	text := q
	if shortened {
		text = clip(q, preview)
	}
	b = appendStr(b, "query", text)
	b = appendTrue(b, "query_truncated", truncated)
	if shortened {
		b = appendTrue(b, "query_preview", true)
		b = strconv.AppendInt(append(b, `,"query_bytes":`...), int64(len(q)), 10)
	}
	return b
}

func appendStr(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(append(append(b, `,"`...), name...), `":`...)
	return appendString(b, v)
}

func appendStrs(b []byte, name string, vs []string) []byte {
	if len(vs) == 0 {
		return b
	}
	b = append(append(append(b, `,"`...), name...), `":[`...)
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, v)
	}
	return append(b, ']')
}

func appendTime(b []byte, name string, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b = append(append(append(b, `,"`...), name...), `":"`...)
	return append(t.AppendFormat(b, time.RFC3339Nano), '"')
}

func appendInt(b []byte, name string, v *int64) []byte {
	if v == nil {
		return b
	}
	b = append(append(append(b, `,"`...), name...), `":`...)
	return strconv.AppendInt(b, *v, 10)
}

func appendTrue(b []byte, name string, v bool) []byte {
	if !v {
		return b
	}
	return append(append(append(b, `,"`...), name...), `":true`...)
}

// appendString appends s as a JSON string in its shortest form. Where s is
// not valid UTF-8 each invalid byte becomes U+FFFD, as encoding/json has it,
// which is all the error AppendQuote then returns reports: a job is shown
// rather than refused for one bad byte.
func appendString(b []byte, s string) []byte {
	b, _ = jsontext.AppendQuote(b, s)
	return b
}
