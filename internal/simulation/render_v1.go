package simulation

import (
	"github.com/bqobserver/bqobserver/events"
)

// v1 method names.
const (
	methodV1Insert    = "jobservice.insert"
	methodV1Query     = "jobservice.query"
	methodV1Cancel    = "jobservice.cancel"
	methodV1Completed = "jobservice.jobcompleted"
)

func (c *content) v1Method() string {
	switch c.tr {
	case trInserted:
		return methodV1Insert
	case trQueryReturned:
		return methodV1Query
	case trCancelCall:
		return methodV1Cancel
	}
	return methodV1Completed
}

// v1EventNames name the completion events per job type.
var v1EventNames = map[string]string{
	events.JobTypeQuery: "query_job_completed", events.JobTypeLoad: "load_job_completed",
	events.JobTypeExtract: "extract_job_completed", events.JobTypeCopy: "table_copy_job_completed",
}

// renderV1 writes an AuditData entry. An entry that would outgrow what
// Cloud Logging keeps has its query text shortened until it fits; the
// format has no flag to say so.
func (c *content) renderV1() []byte {
	for {
		b := c.renderV1Once()
		if len(b) <= maxEntryBytes || c.query == "" {
			return b
		}
		cut := max(0, len(c.query)-(len(b)-maxEntryBytes)-64)
		if c.tr == trQueryReturned {
			// The query is written twice: in the request and in the job.
			cut = max(0, len(c.query)-(len(b)-maxEntryBytes)/2-64)
		}
		c.query = c.query[:cut]
	}
}

func (c *content) renderV1Once() []byte {
	w := &jsonWriter{b: make([]byte, 0, 2048+2*len(c.query))}
	w.obj()
	w.key("protoPayload").obj()
	c.v1Payload(w)
	w.endObj()
	w.key("insertId").str(c.h.insertID)
	w.key("resource").obj()
	w.key("type").str("bigquery_resource")
	w.key("labels").obj()
	w.key("project_id").str(c.j.key.Project)
	w.endObj()
	w.endObj()
	w.key("timestamp").time(c.h.timestamp, layoutLog)
	w.key("severity").str(c.severity())
	w.key("logName").str(logName(c.j.key.Project))
	w.key("receiveTimestamp").time(c.h.receive, layoutReceive)
	w.endObj()
	return w.b
}

func (c *content) v1Payload(w *jsonWriter) {
	w.key("@type").str(typeAuditLog)
	code := 0
	if c.tr == trQueryReturned && c.err != nil {
		code = c.err.v1Code // the jobs.query call itself failed
	}
	c.status(w, code)
	c.authentication(w)
	call := c.tr != trCompleted
	c.requestMetadata(w, call && c.tr != trCancelCall)
	w.key("serviceName").str(serviceName)
	w.key("methodName").str(c.v1Method())
	if c.tr == trInserted || c.tr == trQueryReturned {
		c.authorization(w)
	}
	resource := "projects/" + c.j.key.Project + "/jobs"
	if c.tr == trCompleted || c.tr == trCancelCall {
		resource = c.jobName()
	}
	w.key("resourceName").str(resource)
	w.key("serviceData").obj()
	w.key("@type").str(typeV1)
	c.v1ServiceData(w)
	w.endObj()
}

func (c *content) v1ServiceData(w *jsonWriter) {
	switch c.tr {
	case trInserted:
		c.v1Insert(w)
	case trQueryReturned:
		w.key("jobQueryRequest").obj()
		w.key("query").str(c.query)
		w.key("defaultDataset").empty()
		w.key("projectId").str(c.j.key.Project)
		w.endObj()
		w.key("jobQueryResponse").obj()
		w.key("totalResults").int64s(c.totalResults())
		w.key("job").obj()
		c.v1Job(w)
		w.endObj()
		w.endObj()
	case trCompleted:
		w.key("jobCompletedEvent").obj()
		w.key("eventName").str(v1EventNames[c.j.jobType])
		w.key("job").obj()
		c.v1Job(w)
		w.endObj()
		w.endObj()
	}
}

// v1Insert writes a jobs.insert call: the job as requested, and as
// BigQuery answered, with an empty configuration.
func (c *content) v1Insert(w *jsonWriter) {
	w.key("jobInsertRequest").obj()
	w.key("resource").obj()
	c.v1JobName(w)
	c.v1JobConfiguration(w)
	w.endObj()
	w.endObj()
	w.key("jobInsertResponse").obj()
	w.key("resource").obj()
	c.v1JobName(w)
	w.key("jobConfiguration").empty()
	c.v1JobStatus(w)
	c.v1JobStatistics(w)
	w.endObj()
	w.endObj()
}

func (c *content) totalResults() int64 {
	if c.use != nil && c.err == nil && c.use.hasRows {
		return c.use.rows
	}
	return 0
}

func (c *content) v1Job(w *jsonWriter) {
	c.v1JobName(w)
	c.v1JobConfiguration(w)
	c.v1JobStatus(w)
	c.v1JobStatistics(w)
}

func (c *content) v1JobName(w *jsonWriter) {
	w.key("jobName").obj()
	w.key("projectId").str(c.j.key.Project)
	w.key("jobId").str(c.j.key.JobID)
	w.key("location").str(c.j.key.Location)
	w.endObj()
}

func tableObj(w *jsonWriter, t tableRef) {
	if t.isZero() {
		w.empty()
		return
	}
	w.obj()
	w.key("projectId").str(t.project)
	w.key("datasetId").str(t.dataset)
	w.key("tableId").str(t.table)
	w.endObj()
}

func tableObjs(w *jsonWriter, ts []tableRef) {
	w.arr()
	for _, t := range ts {
		tableObj(w, t)
	}
	w.endArr()
}

func (c *content) v1JobConfiguration(w *jsonWriter) {
	j := c.j
	w.key("jobConfiguration").obj()
	switch j.jobType {
	case events.JobTypeQuery:
		c.v1QueryConfig(w)
	case events.JobTypeLoad:
		w.key("load").obj()
		if len(j.sourceURIs) > 0 {
			w.key("sourceUris")
			strs(w, j.sourceURIs)
		}
		w.key("destinationTable")
		tableObj(w, c.dest)
		w.endObj()
	case events.JobTypeExtract:
		w.key("extract").obj()
		w.key("destinationUris")
		strs(w, j.destURIs)
		w.key("sourceTable")
		tableObj(w, j.sql.refs[0])
		w.endObj()
	case events.JobTypeCopy:
		w.key("tableCopy").obj()
		w.key("sourceTables")
		tableObjs(w, j.sql.refs)
		w.key("destinationTable")
		tableObj(w, c.dest)
		w.endObj()
	}
	labels(w, j.labels)
	w.endObj()
}

func (c *content) v1QueryConfig(w *jsonWriter) {
	j := c.j
	w.key("query").obj()
	w.key("query").str(c.query)
	w.key("destinationTable")
	tableObj(w, c.dest)
	w.key("createDisposition").str(j.createDisp)
	w.key("writeDisposition").str(j.writeDisp)
	w.key("defaultDataset").empty()
	w.key("queryPriority").str(j.priority)
	if c.statement != "" {
		w.key("statementType").str(c.statement)
	}
	w.endObj()
}

func (c *content) v1JobStatus(w *jsonWriter) {
	w.key("jobStatus").obj()
	w.key("state").str(string(c.state))
	w.key("error")
	if f := c.err; f != nil {
		w.obj()
		w.key("code").num(int64(f.v1Code))
		w.key("message").str(f.message)
		w.endObj()
		w.key("additionalErrors").arr()
		w.obj()
		w.key("code").num(int64(f.v1Code))
		w.key("message").str(f.message)
		w.endObj()
		w.endArr()
	} else {
		w.empty()
	}
	w.endObj()
}

func (c *content) v1JobStatistics(w *jsonWriter) {
	j := c.j
	w.key("jobStatistics").obj()
	w.key("createTime").time(jobTime(j.created), layoutJob)
	if !c.start.IsZero() {
		w.key("startTime").time(c.start, layoutJob)
	}
	if !c.end.IsZero() {
		w.key("endTime").time(c.end, layoutJob)
	}
	if u := c.use; u != nil {
		c.v1Usage(w, u)
	}
	w.endObj()
}

func (c *content) v1Usage(w *jsonWriter, u *usage) {
	j := c.j
	query := u.hasBytes && j.isQuery()
	if query {
		w.key("totalProcessedBytes").int64s(u.processed)
		w.key("totalBilledBytes").int64s(u.billed)
		w.key("billingTier").num(1)
	}
	if u.hasSlot {
		w.key("totalSlotMs").int64s(u.slotMs)
	}
	if query && len(j.sql.refs) > 0 {
		c.v1Referenced(w)
	}
	if u.hasRows {
		w.key("queryOutputRowCount").int64s(u.rows)
	}
	if u.loadBytes > 0 {
		w.key("totalLoadOutputBytes").int64s(u.loadBytes)
	}
	switch {
	case c.reservation != "" && j.jobType == events.JobTypeLoad:
		reservationUsage(w, c.reservation, u.slotMs)
	case c.reservation != "":
		w.key("reservation").str(c.reservation)
	}
}

// v1Referenced writes the tables and views a query read, and their counts.
func (c *content) v1Referenced(w *jsonWriter) {
	s := &c.j.sql
	w.key("referencedTables")
	tableObjs(w, s.refs)
	if len(s.views) > 0 {
		w.key("referencedViews")
		tableObjs(w, s.views)
	}
	w.key("totalTablesProcessed").num(int64(len(s.refs)))
	if len(s.views) > 0 {
		w.key("totalViewsProcessed").num(int64(len(s.views)))
	}
}

// reservationUsage writes the deprecated usage list, which names the
// shared pool load jobs run in.
func reservationUsage(w *jsonWriter, name string, slotMs int64) {
	w.key("reservationUsage").arr()
	w.obj()
	w.key("name").str(name)
	w.key("slotMs").int64s(slotMs)
	w.endObj()
	w.endArr()
}
