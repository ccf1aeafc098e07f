package auditlog

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/bqobserver/bqobserver/events"
)

// v2Entry wraps a jobChange job in a v2 LogEntry located in US.
func v2Entry(job string) string {
	return `{"insertId":"i1","logName":"projects/p/logs/cloudaudit.googleapis.com%2Fdata_access",
	"timestamp":"2024-01-01T00:00:00Z","resource":{"type":"bigquery_project","labels":{"project_id":"p","location":"US"}},
	"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","serviceName":"bigquery.googleapis.com",
	"methodName":"google.cloud.bigquery.v2.JobService.InsertJob","status":{},
	"metadata":{"@type":"type.googleapis.com/google.cloud.audit.BigQueryAuditMetadata","jobChange":{"after":"DONE","job":` + job + `}}}}`
}

// v1Entry wraps AuditData members in a v1 LogEntry.
func v1Entry(method, status, serviceData string) string {
	return `{"insertId":"i1","logName":"projects/p/logs/cloudaudit.googleapis.com%2Fdata_access",
	"timestamp":"2024-01-01T00:00:00Z","resource":{"type":"bigquery_resource","labels":{"project_id":"p"}},
	"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","serviceName":"bigquery.googleapis.com",
	"methodName":"` + method + `","status":` + status + `,
	"serviceData":{"@type":"type.googleapis.com/google.cloud.bigquery.logging.v1.AuditData",` + serviceData + `}}}`
}

const v1DoneJob = `"jobCompletedEvent":{"eventName":"query_job_completed","job":{"jobName":{"projectId":"p","jobId":"j1","location":"US"},"jobStatus":{"state":"DONE","error":{}}}}`

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name  string
		entry string
		want  ErrorReason
	}{
		{"empty", ``, ReasonBadJSON},
		{"truncated", `{"protoPayload":`, ReasonBadJSON},
		{"trailing garbage", `{} x`, ReasonBadJSON},
		{"array", `[{"insertId":"a"}]`, ReasonNotAuditEntry},
		{"string", `"entry"`, ReasonNotAuditEntry},
		{"number", `42`, ReasonNotAuditEntry},
		{"null", `null`, ReasonNotAuditEntry},
		{"empty object", `{}`, ReasonNotAuditEntry},
		{"text payload", `{"insertId":"a","textPayload":"hello","timestamp":"2024-01-01T00:00:00Z"}`, ReasonNotAuditEntry},
		{"json payload", `{"insertId":"a","jsonPayload":{"message":"hi"}}`, ReasonNotAuditEntry},
		{"other proto payload", `{"protoPayload":{"@type":"type.googleapis.com/google.appengine.logging.v1.RequestLog"}}`, ReasonNotAuditEntry},
		{"protoPayload not an object", `{"protoPayload":7}`, ReasonBadField},
		{"unknown serviceData type", `{"protoPayload":{"serviceData":{"@type":"type.googleapis.com/x.Y"}}}`, ReasonUnknownPayload},
		{"unknown metadata type", `{"protoPayload":{"metadata":{"@type":"type.googleapis.com/x.Y","jobChange":"wrong shape"}}}`, ReasonUnknownPayload},
		{"v1 job without id", v1Entry("jobservice.jobcompleted", `{}`,
			`"jobCompletedEvent":{"job":{"jobName":{"projectId":"p","location":"US"}}}`), ReasonNoJobID},
		{"v1 completion without job", v1Entry("jobservice.jobcompleted", `{}`, `"jobCompletedEvent":{}`), ReasonNoJobID},
		{"v1 job without location", v1Entry("jobservice.jobcompleted", `{}`,
			`"jobCompletedEvent":{"job":{"jobName":{"projectId":"p","jobId":"j"}}}`), ReasonNoJobID},
		{"v2 job without name", v2Entry(`{"jobStatus":{"jobState":"DONE"}}`), ReasonNoJobID},
		{"v2 job without location", strings.Replace(v2Entry(`{"jobName":"projects/p/jobs/j"}`), `"location":"US"`, `"dataset_id":"d"`, 1), ReasonNoJobID},
		{"v2 job name garbage", v2Entry(`{"jobName":"jobs/j"}`), ReasonBadField},
		{"int64 not a number", v2Entry(`{"jobName":"projects/p/jobs/j","jobStats":{"totalSlotMs":"many"}}`), ReasonBadField},
		{"int64 fractional", v2Entry(`{"jobName":"projects/p/jobs/j","jobStats":{"queryStats":{"billingTier":1.5}}}`), ReasonBadField},
		{"int64 an object", v2Entry(`{"jobName":"projects/p/jobs/j","jobStats":{"totalSlotMs":{}}}`), ReasonBadField},
		{"table list a string", v2Entry(`{"jobName":"projects/p/jobs/j","jobStats":{"queryStats":{"referencedTables":"t"}}}`), ReasonBadField},
		{"labels not strings", v2Entry(`{"jobName":"projects/p/jobs/j","jobConfig":{"labels":{"a":1}}}`), ReasonBadField},
		{"bad job time", v2Entry(`{"jobName":"projects/p/jobs/j","jobStats":{"endTime":"soon"}}`), ReasonBadField},
		{"bad status code", v2Entry(`{"jobName":"projects/p/jobs/j","jobStatus":{"errorResult":{"code":[3]}}}`), ReasonBadField},
		{"reserved character in job id", v2Entry(`{"jobName":"projects/p/jobs/j#1"}`), ReasonBadField},
		{"v1 job id with a slash", v1Entry("jobservice.jobcompleted", `{}`,
			`"jobCompletedEvent":{"eventName":"query_job_completed","job":{"jobName":{"projectId":"p","jobId":"c/d","location":"b"},"jobStatus":{"state":"DONE","error":{}}}}`), ReasonBadField},
		{"v1 location with a slash", v1Entry("jobservice.jobcompleted", `{}`,
			`"jobCompletedEvent":{"eventName":"query_job_completed","job":{"jobName":{"projectId":"p","jobId":"d","location":"b/c"},"jobStatus":{"state":"DONE","error":{}}}}`), ReasonBadField},
		{"no time at all", `{"serviceData":{` + v1DoneJob + `}}`, ReasonNoTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := Decode([]byte(tt.entry))
			if len(evs) != 0 {
				t.Errorf("Decode returned %d events with error %v", len(evs), err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode error = %v (%T), want *Error", err, err)
			}
			if e.Reason != tt.want {
				t.Errorf("Reason = %q, want %q (%v)", e.Reason, tt.want, err)
			}
			if !errors.Is(err, events.ErrInvalid) {
				t.Errorf("errors.Is(%v, events.ErrInvalid) = false, want true", err)
			}
			if errors.Is(err, ErrSkip) || errors.Is(err, events.ErrUnavailable) {
				t.Errorf("%v matches ErrSkip or ErrUnavailable", err)
			}
		})
	}
}

func TestDecodeSkips(t *testing.T) {
	tests := []struct {
		name  string
		entry string
		want  SkipReason
	}{
		{"v1 insert dry run", v1Entry("jobservice.insert", `{}`,
			`"jobInsertRequest":{"resource":{"jobConfiguration":{"dryRun":true,"query":{"query":"SELECT 1"}},"jobName":{"projectId":"p","location":"US"}}}`), SkipDryRun},
		{"v1 query dry run without job", v1Entry("jobservice.query", `{}`, `"jobQueryRequest":{"dryRun":true}`), SkipDryRun},
		{"v1 dry run that failed", v1Entry("jobservice.insert", `{"code":11,"message":"Syntax error"}`,
			`"jobInsertResponse":{"resource":{"jobConfiguration":{"dryRun":true}}}`), SkipDryRun},
		{"v1 table data list", v1Entry("tabledataservice.list", `{}`, `"tableDataListRequest":{"maxResults":5}`), SkipNotJob},
		{"v1 query without job", v1Entry("jobservice.query", `{}`, `"jobQueryResponse":{"totalResults":"0"}`), SkipNotJob},
		{"v1 cancel has no location", v1Entry("jobservice.cancel", `{}`, `"jobCompletedEvent":null`), SkipNotJob},
		{"v1 insert rejected", v1Entry("jobservice.insert", `{"code":7,"message":"denied"}`,
			`"jobInsertRequest":{"resource":{"jobName":{"projectId":"p","jobId":"wanted","location":"US"}}},"jobInsertResponse":{"resource":{"jobName":{}}}`), SkipRejected},
		{"v2 job event rejected", strings.Replace(v2Entry(`{}`), `"status":{}`, `"status":{"code":5,"message":"Not found"}`, 1), SkipRejected},
		{"v2 table read", `{"protoPayload":{"methodName":"google.cloud.bigquery.v2.JobService.InsertJob","metadata":{"tableDataRead":{"reason":"JOB"}}}}`, SkipNotJob},
		{"v2 metadata without event", `{"protoPayload":{"metadata":{"@type":"type.googleapis.com/google.cloud.audit.BigQueryAuditMetadata"}}}`, SkipNotJob},
		{"v2 cancel rejected", `{"protoPayload":{"methodName":"google.cloud.bigquery.v2.JobService.CancelJob","status":{"code":7},"resourceName":"projects/p/jobs/j"}}`, SkipRejected},
		{"no payload rejected", `{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","status":{"code":"7"}}}`, SkipRejected},
		{"no payload", `{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","status":{"code":0}}}`, SkipNoPayload},
		{"another service", `{"protoPayload":{"serviceName":"storage.googleapis.com","metadata":{}}}`, SkipNotJob},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := Decode([]byte(tt.entry))
			if len(evs) != 0 {
				t.Errorf("Decode returned %d events with error %v", len(evs), err)
			}
			var s *SkipError
			if !errors.As(err, &s) {
				t.Fatalf("Decode error = %v (%T), want *SkipError", err, err)
			}
			if s.Reason != tt.want {
				t.Errorf("Reason = %q, want %q (%v)", s.Reason, tt.want, err)
			}
			if !errors.Is(err, ErrSkip) {
				t.Errorf("errors.Is(%v, ErrSkip) = false, want true", err)
			}
			if errors.Is(err, events.ErrInvalid) {
				t.Errorf("errors.Is(%v, events.ErrInvalid) = true, want false", err)
			}
		})
	}
}

// TestErrorUnwrap checks that the cause of an Error stays reachable.
func TestErrorUnwrap(t *testing.T) {
	_, err := Decode([]byte(`{"a":`))
	var syntax *json.SyntaxError
	if !errors.As(err, &syntax) {
		t.Errorf("errors.As(%v, *json.SyntaxError) = false, want true", err)
	}
	wrapped := errors.Join(errors.New("context"), err)
	if !errors.Is(wrapped, events.ErrInvalid) {
		t.Errorf("a joined Error no longer matches events.ErrInvalid")
	}
}

// TestDecodeAcceptsMinimal checks what a job event needs at the least, and
// that the fallbacks fill the rest.
func TestDecodeAcceptsMinimal(t *testing.T) {
	tests := []struct {
		name    string
		entry   string
		want    events.JobKey
		wantSrc events.Source
	}{
		{"v1 location from resource labels", `{"logName":"l","insertId":"i","receiveTimestamp":"2024-01-01T00:00:00Z",
			"resource":{"labels":{"project_id":"p","location":"EU"}},
			"protoPayload":{"serviceData":{"jobCompletedEvent":{"job":{"jobName":{"jobId":"j"}}}}}}`,
			events.JobKey{Project: "p", Location: "EU", JobID: "j"},
			events.Source{Format: "v1", Method: "jobCompletedEvent", LogName: "l", InsertID: "i"}},
		{"v2 location in job name", `{"timestamp":"2024-01-01T00:00:00Z",
			"protoPayload":{"metadata":{"jobInsertion":{"job":{"jobName":"projects/p/locations/asia-east1/jobs/j"}}}}}`,
			events.JobKey{Project: "p", Location: "asia-east1", JobID: "j"},
			events.Source{Format: "v2", Method: "jobInsertion"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := Decode([]byte(tt.entry))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if evs[0].Job != tt.want || evs[0].Source != tt.wantSrc {
				t.Errorf("Decode = job %+v source %+v, want job %+v source %+v", evs[0].Job, evs[0].Source, tt.want, tt.wantSrc)
			}
			if err := evs[0].Validate(); err != nil {
				t.Errorf("event does not validate: %v", err)
			}
		})
	}
}
