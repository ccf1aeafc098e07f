package simulation

import (
	"strconv"

	"github.com/bqobserver/bqobserver/events"
)

// Names of the audit formats' payloads and methods.
const (
	typeAuditLog = "type.googleapis.com/google.cloud.audit.AuditLog"
	typeV1       = "type.googleapis.com/google.cloud.bigquery.logging.v1.AuditData"
	typeV2       = "type.googleapis.com/google.cloud.audit.BigQueryAuditMetadata"
	serviceName  = "bigquery.googleapis.com"

	methodInsertJob = "google.cloud.bigquery.v2.JobService.InsertJob"
	methodQuery     = "google.cloud.bigquery.v2.JobService.Query"
	methodCancelJob = "google.cloud.bigquery.v2.JobService.CancelJob"
)

// v2Method is the API method a v2 job entry is filed under: the one that
// created the job.
func (c *content) v2Method() string {
	switch {
	case c.tr == trCancelCall:
		return methodCancelJob
	case c.j.viaQuery:
		return methodQuery
	}
	return methodInsertJob
}

// v2Event is the key under metadata that holds the job event.
func (c *content) v2Event() string {
	if c.tr == trInserted {
		return "jobInsertion"
	}
	return "jobChange"
}

func (c *content) jobName() string { return "projects/" + c.j.key.Project + "/jobs/" + c.j.key.JobID }

// renderV2 writes a BigQueryAuditMetadata entry, with its members in the
// order Cloud Logging's samples show them.
func (c *content) renderV2() []byte {
	w := &jsonWriter{b: make([]byte, 0, 2048+len(c.query))}
	w.obj()
	w.key("protoPayload").obj()
	c.v2Payload(w)
	w.endObj()
	w.key("insertId").str(c.h.insertID)
	w.key("resource").obj()
	w.key("type").str("bigquery_project")
	w.key("labels").obj()
	w.key("project_id").str(c.j.key.Project)
	w.key("location").str(c.j.key.Location)
	w.endObj()
	w.endObj()
	w.key("timestamp").time(c.h.timestamp, layoutLog)
	w.key("severity").str(c.severity())
	w.key("logName").str(logName(c.j.key.Project))
	c.v2Operation(w)
	w.key("receiveTimestamp").time(c.h.receive, layoutReceive)
	w.endObj()
	return w.b
}

func (c *content) severity() string {
	if c.err != nil {
		return "ERROR"
	}
	return "INFO"
}

// v2Operation links a job's entries: first on the insertion, last on the
// completion.
func (c *content) v2Operation(w *jsonWriter) {
	if c.tr == trCancelCall {
		return
	}
	w.key("operation").obj()
	w.key("id").str(strconv.FormatInt(jobTime(c.j.created).UnixMilli(), 10) + "-" + c.j.key.Project + ":" + c.j.key.JobID)
	w.key("producer").str(serviceName)
	switch c.tr {
	case trInserted:
		w.key("first").boolean(true)
	case trCompleted:
		w.key("last").boolean(true)
	}
	w.endObj()
}

func (c *content) v2Payload(w *jsonWriter) {
	w.key("@type").str(typeAuditLog)
	c.status(w, c.v2Code())
	c.authentication(w)
	c.requestMetadata(w, c.withAttributes())
	w.key("serviceName").str(serviceName)
	w.key("methodName").str(c.v2Method())
	c.authorization(w)
	w.key("resourceName").str(c.jobName())
	w.key("metadata").obj()
	w.key("@type").str(typeV2)
	if c.tr != trCancelCall {
		c.v2JobEvent(w)
	}
	w.endObj()
}

func (c *content) v2Code() int {
	if c.err == nil {
		return 0
	}
	return c.err.v2Code
}

// status is the call's google.rpc.Status: empty on success.
func (c *content) status(w *jsonWriter, code int) {
	w.key("status")
	if code == 0 {
		w.empty()
		return
	}
	w.obj()
	w.key("code").num(int64(code))
	w.key("message").str(canonicalNames[code])
	w.endObj()
}

func (c *content) authentication(w *jsonWriter) {
	w.key("authenticationInfo").obj()
	w.key("principalEmail").str(c.principal.email)
	if c.principal.user && c.j.client == clientBQ && c.tr != trCancelCall {
		w.key("oauthInfo").obj()
		w.key("oauthClientId").str(bqOAuthClient)
		w.endObj()
	}
	w.endObj()
}

// requestMetadata says who called from where; calls carry the request and
// destination attributes, which BigQuery writes empty.
func (c *content) requestMetadata(w *jsonWriter, call bool) {
	ip, agent := c.j.callerIP, c.j.userAgent
	if c.tr == trCancelCall {
		ip, agent = c.principal.callerIP, pick0(userAgents[c.principal.client])
	}
	w.key("requestMetadata").obj()
	w.key("callerIp").str(ip)
	w.key("callerSuppliedUserAgent").str(agent)
	if call {
		w.key("requestAttributes").empty()
		w.key("destinationAttributes").empty()
	}
	w.endObj()
}

func pick0(s []string) string { return s[0] }

// withAttributes reports whether the entry carries the (empty) request,
// destination and resource attributes: v2 entries of calls do, and so does
// the completion of a failed job, as the one real sample of it shows.
func (c *content) withAttributes() bool {
	return c.tr == trInserted || c.tr == trCancelCall || (c.tr == trCompleted && c.err != nil)
}

func (c *content) authorization(w *jsonWriter) {
	resource, permission := "projects/"+c.j.key.Project, "bigquery.jobs.create"
	if c.tr == trCancelCall {
		resource, permission = c.jobName(), "bigquery.jobs.update"
	}
	w.key("authorizationInfo").arr()
	w.obj()
	w.key("resource").str(resource)
	w.key("permission").str(permission)
	w.key("granted").boolean(true)
	if c.withAttributes() {
		w.key("resourceAttributes").empty()
	}
	w.endObj()
	w.endArr()
}

func (c *content) v2JobEvent(w *jsonWriter) {
	w.key(c.v2Event()).obj()
	switch c.tr {
	case trRunning:
		w.key("before").str(string(events.StatePending))
		w.key("after").str(string(events.StateRunning))
	case trCompleted:
		w.key("after").str(string(events.StateDone))
	}
	w.key("job").obj()
	w.key("jobName").str(c.jobName())
	c.v2JobConfig(w)
	c.v2JobStatus(w)
	c.v2JobStats(w)
	w.endObj()
	if c.tr == trInserted {
		reason := "JOB_INSERT_REQUEST"
		if c.j.viaQuery {
			reason = "QUERY_REQUEST"
		}
		w.key("reason").str(reason)
	}
	w.endObj()
}

// v2Types are the job types as v2 names them.
var v2Types = map[string]string{
	events.JobTypeQuery: "QUERY", events.JobTypeLoad: "IMPORT", events.JobTypeExtract: "EXPORT", events.JobTypeCopy: "COPY",
}

func (c *content) v2JobConfig(w *jsonWriter) {
	j := c.j
	w.key("jobConfig").obj()
	w.key("type").str(v2Types[j.jobType])
	switch j.jobType {
	case events.JobTypeQuery:
		c.v2QueryConfig(w)
	case events.JobTypeLoad:
		c.v2LoadConfig(w)
	case events.JobTypeExtract:
		w.key("extractConfig").obj()
		w.key("destinationUris")
		strs(w, j.destURIs)
		w.key("sourceTable").str(j.sql.refs[0].path())
		w.endObj()
	case events.JobTypeCopy:
		w.key("tableCopyConfig").obj()
		w.key("sourceTables").arr()
		for _, t := range j.sql.refs {
			w.str(t.path())
		}
		w.endArr()
		w.key("destinationTable").str(c.dest.path())
		w.key("createDisposition").str(j.createDisp)
		w.key("writeDisposition").str(j.writeDisp)
		w.endObj()
	}
	labels(w, j.labels)
	w.endObj()
}

func (c *content) v2LoadConfig(w *jsonWriter) {
	j := c.j
	w.key("loadConfig").obj()
	if len(j.sourceURIs) > 0 {
		w.key("sourceUris")
		strs(w, j.sourceURIs)
	}
	w.key("schemaJson").str("{\n}")
	w.key("destinationTable").str(c.dest.path())
	w.key("createDisposition").str(j.createDisp)
	w.key("writeDisposition").str(j.writeDisp)
	w.endObj()
}

func strs(w *jsonWriter, ss []string) {
	w.arr()
	for _, s := range ss {
		w.str(s)
	}
	w.endArr()
}

func labels(w *jsonWriter, ls []label) {
	if len(ls) == 0 {
		return
	}
	w.key("labels").obj()
	for _, l := range ls {
		w.key(l.key).str(l.value)
	}
	w.endObj()
}

func (c *content) v2QueryConfig(w *jsonWriter) {
	j := c.j
	w.key("queryConfig").obj()
	w.key("query").str(c.query)
	if c.truncated {
		w.key("queryTruncated").boolean(true)
	}
	if !c.dest.isZero() {
		w.key("destinationTable").str(c.dest.path())
	}
	w.key("createDisposition").str(j.createDisp)
	w.key("writeDisposition").str(j.writeDisp)
	w.key("priority").str(j.priority)
	if c.statement != "" {
		w.key("statementType").str(c.statement)
	}
	w.endObj()
}

func (c *content) v2JobStatus(w *jsonWriter) {
	w.key("jobStatus").obj()
	w.key("jobState").str(string(c.state))
	if f := c.err; f != nil {
		w.key("errorResult").obj()
		w.key("code").num(int64(f.v2Code))
		w.key("message").str(f.message)
		w.endObj()
		w.key("errors").arr()
		w.obj()
		w.key("code").num(int64(f.v2Code))
		w.key("message").str(f.message)
		w.endObj()
		w.endArr()
	}
	w.endObj()
}

func (c *content) v2JobStats(w *jsonWriter) {
	j := c.j
	w.key("jobStats").obj()
	w.key("createTime").time(jobTime(j.created), layoutJob)
	if !c.start.IsZero() {
		w.key("startTime").time(c.start, layoutJob)
	}
	if !c.end.IsZero() {
		w.key("endTime").time(c.end, layoutJob)
	}
	c.v2TypeStats(w)
	if u := c.use; u != nil && u.hasSlot {
		w.key("totalSlotMs").int64s(u.slotMs)
	}
	switch {
	case c.reservation != "" && j.jobType == events.JobTypeLoad:
		reservationUsage(w, c.reservation, c.use.slotMs)
	case c.reservation != "":
		w.key("reservation").str(c.reservation)
	}
	if j.parent != nil {
		w.key("parentJobName").str("projects/" + j.parent.key.Project + "/jobs/" + j.parent.key.JobID)
	}
	w.endObj()
}

// v2TypeStats writes the statistics of the job's type: queryStats is
// present, if empty, on every query entry.
func (c *content) v2TypeStats(w *jsonWriter) {
	u := c.use
	switch c.j.jobType {
	case events.JobTypeQuery:
		w.key("queryStats").obj()
		if u != nil {
			c.v2QueryStats(w, u)
		}
		w.endObj()
	case events.JobTypeLoad:
		if u != nil && u.loadBytes > 0 {
			w.key("loadStats").obj()
			w.key("totalOutputBytes").int64s(u.loadBytes)
			w.endObj()
		}
	case events.JobTypeExtract:
		if u != nil && u.extractBytes > 0 {
			w.key("extractStats").obj()
			w.key("totalInputBytes").int64s(u.extractBytes)
			w.endObj()
		}
	}
}

func (c *content) v2QueryStats(w *jsonWriter, u *usage) {
	if u.hasBytes {
		w.key("totalProcessedBytes").int64s(u.processed)
		w.key("totalBilledBytes").int64s(u.billed)
		w.key("billingTier").num(1)
	}
	if refs := c.j.sql.refs; len(refs) > 0 && u.hasBytes {
		w.key("referencedTables").arr()
		for _, t := range refs {
			w.str(t.path())
		}
		w.endArr()
	}
	if views := c.j.sql.views; len(views) > 0 && u.hasBytes {
		w.key("referencedViews").arr()
		for _, t := range views {
			w.str(t.path())
		}
		w.endArr()
	}
	if u.hasRows {
		w.key("outputRowCount").int64s(u.rows)
	}
	if u.cacheHit {
		w.key("cacheHit").boolean(true)
	}
}
