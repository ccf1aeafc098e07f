package auditlog

import (
	"errors"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

var dispatchNow = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

// TestDecodeReaderIsNotTheOwner: a v1 read of a job's results names its
// reader in authenticationInfo, not who ran the job. A read saying DONE
// after the completion must not make the reader the job's principal, which
// decides who may see the job.
func TestDecodeReaderIsNotTheOwner(t *testing.T) {
	completed := `{"insertId":"c1","logName":"projects/p/logs/cloudaudit.googleapis.com%2Fdata_access","timestamp":"2024-05-01T00:00:05Z",
	"resource":{"type":"bigquery_resource","labels":{"project_id":"p"}},
	"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","serviceName":"bigquery.googleapis.com","methodName":"jobservice.jobcompleted",
	"authenticationInfo":{"principalEmail":"owner@example.com"},"status":{},
	"serviceData":{"@type":"type.googleapis.com/google.cloud.bigquery.logging.v1.AuditData","jobCompletedEvent":{"eventName":"query_job_completed",
	"job":{"jobName":{"projectId":"p","jobId":"j1","location":"US"},"jobConfiguration":{"query":{"query":"SELECT 1"}},
	"jobStatus":{"state":"DONE","error":{}},"jobStatistics":{"createTime":"2024-05-01T00:00:00Z","endTime":"2024-05-01T00:00:05Z","totalBilledBytes":"10485760"}}}}}}`
	read := `{"insertId":"g1","logName":"projects/p/logs/cloudaudit.googleapis.com%2Fdata_access","timestamp":"2024-05-01T00:00:30Z",
	"resource":{"type":"bigquery_resource","labels":{"project_id":"p"}},
	"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","serviceName":"bigquery.googleapis.com","methodName":"jobservice.getqueryresults",
	"authenticationInfo":{"principalEmail":"dashboard@other.iam.gserviceaccount.com"},"status":{},
	"serviceData":{"@type":"type.googleapis.com/google.cloud.bigquery.logging.v1.AuditData","jobGetQueryResultsRequest":{},
	"jobGetQueryResultsResponse":{"totalResults":"1","job":{"jobName":{"projectId":"p","jobId":"j1","location":"US"},
	"jobStatus":{"state":"DONE","error":{}},"jobStatistics":{"createTime":"2024-05-01T00:00:00Z","endTime":"2024-05-01T00:00:05Z"}}}}}}`
	var all []events.Event
	for _, e := range []string{completed, read} {
		evs, _, err := DecodeAt([]byte(e), dispatchNow)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
	}
	if got := all[1].Principal; got != "" {
		t.Errorf("the read's event names %q as the job's principal, want none", got)
	}
	key := events.JobKey{Project: "p", Location: "US", JobID: "j1"}
	if got := events.Fold(key, all).Principal; got != "owner@example.com" {
		t.Errorf("folded principal = %q, want the job's owner owner@example.com", got)
	}
}

// TestDecodeDispatch: what an entry is follows from its service, then its
// payload's members and type, then its status.
func TestDecodeDispatch(t *testing.T) {
	for _, tc := range []struct {
		name, entry string
		skip        SkipReason // "" when an event is wanted
		state       events.State
	}{
		{name: "another service's payload is skipped, not malformed", skip: SkipNotJob, entry: `{"insertId":"x1","logName":"projects/p/logs/cloudaudit.googleapis.com%2Factivity","timestamp":"2024-05-01T00:00:00Z",
	"resource":{"type":"project","labels":{"project_id":"p"}},
	"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","serviceName":"cloudresourcemanager.googleapis.com","methodName":"SetIamPolicy","status":{},
	"serviceData":{"@type":"type.googleapis.com/google.iam.v1.logging.AuditData","policyDelta":{"bindingDeltas":[{"action":"ADD","role":"roles/viewer","member":"user:a@example.com"}]}}}}`},
		{name: "a failed insert with no response made no job", skip: SkipRejected, entry: `{"insertId":"f1","logName":"projects/p/logs/cloudaudit.googleapis.com%2Fdata_access","timestamp":"2024-05-01T00:00:00Z",
	"resource":{"type":"bigquery_resource","labels":{"project_id":"p"}},
	"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","serviceName":"bigquery.googleapis.com","methodName":"jobservice.insert",
	"authenticationInfo":{"principalEmail":"x@example.com"},"status":{"code":7,"message":"Access Denied: Project p: User does not have bigquery.jobs.create permission"},
	"serviceData":{"@type":"type.googleapis.com/google.cloud.bigquery.logging.v1.AuditData","jobInsertRequest":{"resource":{
	"jobName":{"projectId":"p","jobId":"client_chosen_1","location":"US"},"jobConfiguration":{"query":{"query":"SELECT 1"}}}}}}}`},
		{name: "an empty serviceData does not hide the metadata beside it", state: events.StateDone, entry: `{"insertId":"e1","logName":"projects/p/logs/cloudaudit.googleapis.com%2Fdata_access","timestamp":"2024-05-01T00:00:00Z",
	"resource":{"type":"bigquery_project","labels":{"project_id":"p","location":"US"}},
	"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","serviceName":"bigquery.googleapis.com","methodName":"google.cloud.bigquery.v2.JobService.InsertJob","status":{},
	"serviceData":{},
	"metadata":{"@type":"type.googleapis.com/google.cloud.audit.BigQueryAuditMetadata","jobChange":{"after":"DONE","job":{"jobName":"projects/p/jobs/j1","jobStatus":{"jobState":"DONE"}}}}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, _, err := DecodeAt([]byte(tc.entry), dispatchNow)
			var skip *SkipError
			switch {
			case tc.skip != "" && (!errors.As(err, &skip) || skip.Reason != tc.skip):
				t.Errorf("got %d events, error %v; want a %s skip", len(evs), err, tc.skip)
			case tc.skip == "" && (err != nil || len(evs) != 1 || evs[0].State != tc.state):
				t.Errorf("got %+v, %v; want one %s event", evs, err, tc.state)
			}
		})
	}
}
