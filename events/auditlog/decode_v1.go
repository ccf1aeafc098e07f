package auditlog

import (
	"github.com/bqobserver/bqobserver/events"
)

// v1AuditData is the wire shape of the legacy
// google.cloud.bigquery.logging.v1.AuditData payload
// (protoPayload.serviceData), reduced to the members that carry a job.
type v1AuditData struct {
	Type                       string            `json:"@type"`
	JobInsertRequest           *v1JobResource    `json:"jobInsertRequest"`
	JobInsertResponse          *v1JobResource    `json:"jobInsertResponse"`
	JobQueryRequest            *v1QueryRequest   `json:"jobQueryRequest"`
	JobQueryResponse           *v1JobHolder      `json:"jobQueryResponse"`
	JobGetQueryResultsResponse *v1JobHolder      `json:"jobGetQueryResultsResponse"`
	JobQueryDoneResponse       *v1JobHolder      `json:"jobQueryDoneResponse"`
	JobCompletedEvent          *v1CompletedEvent `json:"jobCompletedEvent"`
}

type v1JobResource struct {
	Resource *v1Job `json:"resource"`
}

func (r *v1JobResource) job() *v1Job {
	if r == nil {
		return nil
	}
	return r.Resource
}

type v1JobHolder struct {
	Job *v1Job `json:"job"`
}

func (h *v1JobHolder) job() *v1Job {
	if h == nil {
		return nil
	}
	return h.Job
}

type v1QueryRequest struct {
	DryRun bool `json:"dryRun"`
}

type v1CompletedEvent struct {
	EventName string `json:"eventName"`
	Job       *v1Job `json:"job"`
}

// v1Job is the v1 Job message, as it appears in requests, responses and
// the completion event.
type v1Job struct {
	JobName struct {
		ProjectID string `json:"projectId"`
		JobID     string `json:"jobId"`
		Location  string `json:"location"`
	} `json:"jobName"`
	JobConfiguration v1JobConfiguration `json:"jobConfiguration"`
	JobStatus        struct {
		State string    `json:"state"`
		Error rpcStatus `json:"error"`
	} `json:"jobStatus"`
	JobStatistics v1JobStatistics `json:"jobStatistics"`
}

func (j *v1Job) dryRun() bool { return j != nil && j.JobConfiguration.DryRun }

type v1JobConfiguration struct {
	Query *struct {
		Query            string    `json:"query"`
		DestinationTable tableName `json:"destinationTable"`
		QueryPriority    string    `json:"queryPriority"`
		StatementType    string    `json:"statementType"`
	} `json:"query"`
	Load *struct {
		SourceURIs       []string  `json:"sourceUris"`
		DestinationTable tableName `json:"destinationTable"`
	} `json:"load"`
	Extract *struct {
		DestinationURIs []string  `json:"destinationUris"`
		SourceTable     tableName `json:"sourceTable"`
	} `json:"extract"`
	TableCopy *struct {
		SourceTables     []tableName `json:"sourceTables"`
		DestinationTable tableName   `json:"destinationTable"`
	} `json:"tableCopy"`
	DryRun bool              `json:"dryRun"`
	Labels map[string]string `json:"labels"`
}

func (c *v1JobConfiguration) hasJob() bool {
	return c.Query != nil || c.Load != nil || c.Extract != nil || c.TableCopy != nil
}

type v1JobStatistics struct {
	CreateTime          string             `json:"createTime"`
	StartTime           string             `json:"startTime"`
	EndTime             string             `json:"endTime"`
	TotalProcessedBytes int64Text          `json:"totalProcessedBytes"`
	TotalBilledBytes    int64Text          `json:"totalBilledBytes"`
	BillingTier         int64Text          `json:"billingTier"`
	TotalSlotMs         int64Text          `json:"totalSlotMs"`
	QueryOutputRowCount int64Text          `json:"queryOutputRowCount"`
	Reservation         string             `json:"reservation"`
	ReservationUsage    []reservationUsage `json:"reservationUsage"`
	ReferencedTables    []tableName        `json:"referencedTables"`
	ReferencedViews     []tableName        `json:"referencedViews"`
}

type reservationUsage struct {
	Name string `json:"name"`
}

// reservation prefers the reservation field over the deprecated usage list.
func reservation(name string, usage []reservationUsage) string {
	if name == "" && len(usage) > 0 {
		return usage[0].Name
	}
	return name
}

// v1Selection is the job an AuditData payload is about, and how to read it.
type v1Selection struct {
	key       string       // the AuditData member holding the job
	job       *v1Job       // nil when the member holds none
	kind      events.Kind  // the event's kind unless the job is DONE
	state     events.State // the state when the job states none
	dryRun    bool
	eventName string
	// read: the entry is a read of the job's results (getQueryResults,
	// queryDone), whose caller is whoever reads them, not who ran it.
	read bool
}

// empty reports whether the payload holds nothing at all, not even its
// type: a writer that emits every member left an empty serviceData beside
// the metadata that holds the entry.
func (d *v1AuditData) empty() bool { return *d == v1AuditData{} }

// requestOnly reports whether the payload's job is an insert request with
// no response, which names the id the client asked for.
func (d *v1AuditData) requestOnly() bool {
	return d.JobCompletedEvent == nil && d.JobInsertRequest != nil && d.JobInsertResponse == nil
}

// selectJob finds the job member of the payload, keyed on the member, not
// on the method name.
func (d *v1AuditData) selectJob() (v1Selection, bool) {
	switch {
	case d.JobCompletedEvent != nil:
		return v1Selection{key: "jobCompletedEvent", job: orEmpty(d.JobCompletedEvent.Job),
			kind: events.KindCompleted, state: events.StateDone, eventName: d.JobCompletedEvent.EventName}, true
	case d.JobInsertRequest != nil || d.JobInsertResponse != nil:
		req, resp := d.JobInsertRequest.job(), d.JobInsertResponse.job()
		return v1Selection{key: "jobInsertResponse", job: mergeInsert(resp, req),
			kind: events.KindInserted, state: events.StatePending, dryRun: req.dryRun() || resp.dryRun()}, true
	case d.JobQueryRequest != nil || d.JobQueryResponse != nil:
		job := d.JobQueryResponse.job()
		return v1Selection{key: "jobQueryResponse", job: job, kind: events.KindInserted,
			state: events.StatePending, dryRun: (d.JobQueryRequest != nil && d.JobQueryRequest.DryRun) || job.dryRun()}, true
	case d.JobGetQueryResultsResponse != nil:
		job := d.JobGetQueryResultsResponse.job()
		return v1Selection{key: "jobGetQueryResultsResponse", job: job, kind: events.KindStateChanged, dryRun: job.dryRun(), read: true}, true
	case d.JobQueryDoneResponse != nil:
		job := d.JobQueryDoneResponse.job()
		return v1Selection{key: "jobQueryDoneResponse", job: job, kind: events.KindStateChanged, dryRun: job.dryRun(), read: true}, true
	}
	return v1Selection{}, false
}

func orEmpty(j *v1Job) *v1Job {
	if j == nil {
		return &v1Job{}
	}
	return j
}

// mergeInsert reads an insert from its response, filling what the response
// lacks from the request. The job id comes from the response alone (when
// there is one): a request names the id the client wanted, which exists
// only if the call succeeded.
func mergeInsert(resp, req *v1Job) *v1Job {
	switch {
	case resp == nil:
		return orEmpty(req)
	case req == nil:
		return resp
	}
	out := *resp
	n, rn := &out.JobName, &req.JobName
	n.ProjectID, n.Location = first(n.ProjectID, rn.ProjectID), first(n.Location, rn.Location)
	if !out.JobConfiguration.hasJob() {
		dry := out.JobConfiguration.DryRun
		out.JobConfiguration = req.JobConfiguration
		out.JobConfiguration.DryRun = out.JobConfiguration.DryRun || dry
	}
	if len(out.JobConfiguration.Labels) == 0 {
		out.JobConfiguration.Labels = req.JobConfiguration.Labels
	}
	return &out
}

// decode turns the payload into its job event, or says why there is none,
// and reports whether the entry's caller ran the job.
func (d *v1AuditData) decode(method string) (events.Event, bool, error) {
	sel, ok := d.selectJob()
	switch {
	case !ok:
		return events.Event{}, false, skip(SkipNotJob, "%s carries no job", first(method, "AuditData"))
	case sel.dryRun:
		return events.Event{}, false, skip(SkipDryRun, "%s is a dry run", first(method, sel.key))
	case sel.job == nil:
		return events.Event{}, false, skip(SkipNotJob, "%s carries no job", first(method, sel.key))
	}
	ev, err := sel.event(method)
	return ev, !sel.read, err
}

func (s *v1Selection) event(method string) (events.Event, error) {
	j := s.job
	var c converter
	ev := events.Event{
		Kind:   s.kind,
		State:  s.state,
		Job:    events.JobKey{Project: j.JobName.ProjectID, Location: j.JobName.Location, JobID: j.JobName.JobID},
		Error:  j.JobStatus.Error.jobError(),
		Facts:  j.facts(&c, s.eventName),
		Source: events.Source{Format: "v1", Method: first(method, s.key)},
	}
	if st := parseState(j.JobStatus.State); st != events.StateUnknown && s.kind != events.KindCompleted {
		ev.State = st
	}
	if ev.State == events.StateDone {
		ev.Kind = events.KindCompleted
	}
	return ev, c.err
}

func (j *v1Job) facts(c *converter, eventName string) events.Facts {
	cfg, st := &j.JobConfiguration, &j.JobStatistics
	var refs tableList
	refs.addV1(st.ReferencedTables)
	refs.addV1(st.ReferencedViews)
	f := events.Facts{
		JobType:          cfg.jobType(eventName),
		Labels:           nonEmptyMap(cfg.Labels),
		Reservation:      reservation(st.Reservation, st.ReservationUsage),
		ReferencedTables: refs.names,
		CreateTime:       c.time("jobStatistics.createTime", st.CreateTime),
		StartTime:        c.time("jobStatistics.startTime", st.StartTime),
		EndTime:          c.time("jobStatistics.endTime", st.EndTime),
		BytesProcessed:   c.int64("jobStatistics.totalProcessedBytes", st.TotalProcessedBytes),
		BytesBilled:      c.int64("jobStatistics.totalBilledBytes", st.TotalBilledBytes),
		SlotMs:           c.int64("jobStatistics.totalSlotMs", st.TotalSlotMs),
		BillingTier:      c.int64("jobStatistics.billingTier", st.BillingTier),
		OutputRows:       c.int64("jobStatistics.queryOutputRowCount", st.QueryOutputRowCount),
	}
	cfg.describe(&f)
	return f
}

// describe fills the facts that depend on the kind of job.
func (cfg *v1JobConfiguration) describe(f *events.Facts) {
	if q := cfg.Query; q != nil {
		f.Query, f.StatementType, f.Priority = q.Query, q.StatementType, q.QueryPriority
		f.DestinationTable = q.DestinationTable.String()
	}
	if l := cfg.Load; l != nil {
		f.SourceURIs, f.DestinationTable = nonEmpty(l.SourceURIs), l.DestinationTable.String()
	}
	if e := cfg.Extract; e != nil {
		var src tableList
		src.add(e.SourceTable.String())
		f.DestinationURIs, f.SourceTables = nonEmpty(e.DestinationURIs), src.names
	}
	if t := cfg.TableCopy; t != nil {
		var src tableList
		src.addV1(t.SourceTables)
		f.SourceTables, f.DestinationTable = src.names, t.DestinationTable.String()
	}
}

// v1 completion event names, for jobs whose configuration is missing.
var v1EventJobTypes = map[string]string{
	"query_job_completed":      events.JobTypeQuery,
	"load_job_completed":       events.JobTypeLoad,
	"extract_job_completed":    events.JobTypeExtract,
	"table_copy_job_completed": events.JobTypeCopy,
}

func (cfg *v1JobConfiguration) jobType(eventName string) string {
	switch {
	case cfg.Query != nil:
		return events.JobTypeQuery
	case cfg.Load != nil:
		return events.JobTypeLoad
	case cfg.Extract != nil:
		return events.JobTypeExtract
	case cfg.TableCopy != nil:
		return events.JobTypeCopy
	}
	return v1EventJobTypes[eventName]
}
