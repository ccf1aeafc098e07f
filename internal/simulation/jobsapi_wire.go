package simulation

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	bq "google.golang.org/api/bigquery/v2"

	"github.com/bqobserver/bqobserver/events"
)

// wireJob is j as jobs.get returns it at now.
func (o *Org) wireJob(j *job, now time.Time) *bq.Job {
	id := jobPath(j.key.Project, j.key.Location, j.key.JobID)
	return &bq.Job{
		Kind:             "bigquery#job",
		Id:               id,
		Etag:             etag(id + string(j.state) + now.String()),
		SelfLink:         "https://bigquery.googleapis.com/bigquery/v2/projects/" + j.key.Project + "/jobs/" + j.key.JobID + "?location=" + j.key.Location,
		JobReference:     &bq.JobReference{ProjectId: j.key.Project, Location: j.key.Location, JobId: j.key.JobID},
		UserEmail:        j.principal.email,
		PrincipalSubject: subject(j.principal),
		Configuration:    j.wireConfig(),
		Statistics:       j.wireStats(j.snapshot(now, o.cfg.StatisticsInterval)),
		Status:           j.wireStatus(),
	}
}

// listedJob is j as jobs.list returns it at now. The full projection
// "Includes all job data", statistics with query plan and timeline
// included; the minimal one "Does not include the job configuration"
// (https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/list).
func (o *Org) listedJob(j *job, now time.Time, minimal bool) *bq.JobListJobs {
	status := j.wireStatus()
	l := &bq.JobListJobs{
		Kind:             "bigquery#job",
		Id:               jobPath(j.key.Project, j.key.Location, j.key.JobID),
		JobReference:     &bq.JobReference{ProjectId: j.key.Project, Location: j.key.Location, JobId: j.key.JobID},
		State:            string(j.state),
		ErrorResult:      status.ErrorResult,
		Status:           status,
		Statistics:       j.wireStats(j.snapshot(now, o.cfg.StatisticsInterval)),
		UserEmail:        j.principal.email,
		PrincipalSubject: subject(j.principal),
	}
	if !minimal {
		l.Configuration = j.wireConfig()
	}
	return l
}

// listedEncoding is an open job's jobs.list entry as last encoded, and
// what it was encoded from: the same inputs give the same bytes.
type listedEncoding struct {
	key  listedKey
	data []byte
}

type listedKey struct {
	snap     snapshot
	state    events.State
	children int
	minimal  bool
}

// listedJSON is listedJob encoded. An open job's encoding is kept until
// its statistics are refreshed or its state changes; a finished job's is
// not kept, so that listing old jobs costs no memory.
func (o *Org) listedJSON(j *job, now time.Time, minimal bool) ([]byte, error) {
	if j.state == events.StateDone {
		return json.Marshal(o.listedJob(j, now, minimal))
	}
	key := listedKey{snap: j.snapshot(now, o.cfg.StatisticsInterval), state: j.state, children: j.nextIdx, minimal: minimal}
	if c := j.listed; c != nil && c.key == key {
		return c.data, nil
	}
	data, err := json.Marshal(o.listedJob(j, now, minimal))
	if err != nil {
		return nil, err
	}
	j.listed = &listedEncoding{key: key, data: data}
	return data, nil
}

func subject(p *principal) string {
	if p.user {
		return "user:" + p.email
	}
	return "serviceAccount:" + p.email
}

func etag(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:12])
}

func wireTable(t tableRef) *bq.TableReference {
	if t.isZero() {
		return nil
	}
	return &bq.TableReference{ProjectId: t.project, DatasetId: t.dataset, TableId: t.table}
}

func wireTables(ts []tableRef) []*bq.TableReference {
	out := make([]*bq.TableReference, 0, len(ts))
	for _, t := range ts {
		out = append(out, wireTable(t))
	}
	return out
}

func (j *job) wireConfig() *bq.JobConfiguration {
	c := &bq.JobConfiguration{JobType: j.jobType}
	if len(j.labels) > 0 {
		c.Labels = map[string]string{}
		for _, l := range j.labels {
			c.Labels[l.key] = l.value
		}
	}
	switch j.jobType {
	case events.JobTypeQuery:
		legacy := false
		c.Query = &bq.JobConfigurationQuery{Query: j.query, Priority: strings.TrimPrefix(j.priority, "QUERY_"), UseLegacySql: &legacy,
			CreateDisposition: j.createDisp, WriteDisposition: j.writeDisp, DestinationTable: wireTable(j.sql.dest)}
	case events.JobTypeLoad:
		c.Load = &bq.JobConfigurationLoad{SourceUris: j.sourceURIs, SourceFormat: sourceFormat(j.sourceURIs),
			DestinationTable: wireTable(j.sql.dest), CreateDisposition: j.createDisp, WriteDisposition: j.writeDisp}
	case events.JobTypeExtract:
		c.Extract = &bq.JobConfigurationExtract{DestinationUris: j.destURIs, SourceTable: wireTable(j.sql.refs[0]),
			DestinationFormat: "CSV", Compression: "GZIP"}
	case events.JobTypeCopy:
		c.Copy = &bq.JobConfigurationTableCopy{SourceTables: wireTables(j.sql.refs), DestinationTable: wireTable(j.sql.dest),
			CreateDisposition: j.createDisp, WriteDisposition: j.writeDisp}
	}
	return c
}

func sourceFormat(uris []string) string {
	if len(uris) == 0 {
		return "CSV"
	}
	switch {
	case strings.HasSuffix(uris[0], ".parquet"):
		return "PARQUET"
	case strings.HasSuffix(uris[0], ".avro"):
		return "AVRO"
	case strings.HasSuffix(uris[0], ".json"):
		return "NEWLINE_DELIMITED_JSON"
	}
	return "CSV"
}

func (j *job) wireStatus() *bq.JobStatus {
	s := &bq.JobStatus{State: string(j.state)}
	if f := j.err; f != nil && j.state == events.StateDone {
		e := &bq.ErrorProto{Reason: f.reason, Location: f.location, Message: f.message}
		s.ErrorResult, s.Errors = e, []*bq.ErrorProto{e}
	}
	return s
}

// snapshot is a job's statistics as the jobs API reports them at one
// moment: what it used, and the share of its planned work done.
type snapshot struct {
	at    time.Time // the moment: the last refresh, or the end; zero before the start
	use   usage
	share float64
}

// snapshot returns j's statistics at now, refreshed every `every` from its
// start (continuously if every is 0): a finished job's final ones, a
// script's the sum of its statements'. A job that fails before doing any
// work reports none while it runs, so that no number ever shrinks.
func (j *job) snapshot(now time.Time, every time.Duration) snapshot {
	switch {
	case j.state == events.StateDone:
		return snapshot{at: j.ended, use: j.final, share: j.doneShare()}
	case j.state == events.StatePending || j.started.IsZero():
		return snapshot{}
	}
	at := now
	if every > 0 {
		at = j.started.Add(now.Sub(j.started) / every * every)
	}
	s := snapshot{at: at, share: j.progress(at)}
	switch {
	case j.isScript():
		s.use = j.childUse
		if c := j.current; c != nil {
			s.use.add(c.snapshot(now, every).use)
		}
	case j.failure != nil && !j.failure.late:
		s.share = 0
	default:
		s.use = j.plan.scaled(s.share)
		if j.plan.hasBytes {
			s.use.processed, s.use.hasBytes = int64(float64(j.plan.processed)*s.share), true
		}
	}
	return s
}

// doneShare is the share of its plan a finished job did.
func (j *job) doneShare() float64 {
	switch {
	case j.err == nil:
		return 1
	case j.cancelling:
		if j.ended.IsZero() || j.started.IsZero() {
			return 0
		}
		return j.progress(j.ended)
	case j.err.late:
		return j.failAt
	}
	return 0
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func (j *job) wireStats(s snapshot) *bq.JobStatistics {
	u := s.use
	st := &bq.JobStatistics{CreationTime: ms(j.created), StartTime: ms(j.started), EndTime: ms(j.ended)}
	if u.hasSlot {
		st.TotalSlotMs = u.slotMs
	}
	if u.hasBytes {
		st.TotalBytesProcessed = u.processed
	}
	if j.pool != nil && !j.pool.onDemand && !j.started.IsZero() {
		// reservationUsage "reported misleading information and will no
		// longer be populated"; reservation_id names the reservation.
		st.ReservationId = j.reservation
	}
	if j.parent != nil {
		st.ParentJobId = j.parent.key.JobID
		st.ScriptStatistics = &bq.ScriptStatistics{EvaluationKind: "STATEMENT"}
	}
	if j.isScript() {
		st.NumChildJobs = int64(j.nextIdx)
	}
	j.typeStats(st, s)
	return st
}

func (j *job) typeStats(st *bq.JobStatistics, s snapshot) {
	done, u := j.state == events.StateDone, s.use
	switch j.jobType {
	case events.JobTypeQuery:
		st.Query = j.queryStats(st, s)
	case events.JobTypeLoad:
		if done && j.err == nil {
			st.Load = &bq.JobStatistics3{OutputBytes: u.loadBytes, InputFiles: int64(max(1, u.loadBytes/(256*mib))), InputFileBytes: u.loadBytes * 3 / 2}
		}
	case events.JobTypeExtract:
		if done && j.err == nil {
			st.Extract = &bq.JobStatistics4{InputBytes: u.extractBytes, DestinationUriFileCounts: []int64{max(1, u.extractBytes/(1<<30))}}
		}
	case events.JobTypeCopy:
		if done && j.err == nil {
			st.Copy = &bq.JobStatistics5{}
		}
	}
}

// queryStats are a query's statistics. Its plan and timeline come once it
// runs, except for scripts (their statements have them) and results
// served from the cache, which "won't include the additional diagnostic
// information" (https://cloud.google.com/bigquery/docs/query-plan-explanation).
func (j *job) queryStats(st *bq.JobStatistics, s snapshot) *bq.JobStatistics2 {
	done, u := j.state == events.StateDone, s.use
	q := &bq.JobStatistics2{TotalSlotMs: st.TotalSlotMs, TotalBytesProcessed: st.TotalBytesProcessed, CacheHit: u.cacheHit}
	if j.failure == nil || !j.failure.unparsed {
		q.StatementType = j.statement
	}
	if done && u.hasBytes {
		q.TotalBytesBilled, q.BillingTier = u.billed, 1
		q.ReferencedTables = wireTables(uniqueRefs(j.sql.refs))
	}
	if done && u.hasRows && j.statement != "SELECT" {
		q.NumDmlAffectedRows = u.rows
	}
	if !j.started.IsZero() && j.plan.hasSlot && !j.isScript() && !j.plan.cacheHit {
		p := j.queryPlan()
		q.QueryPlan, q.Timeline = p.wireStages(j, s), p.timeline(j, s)
	}
	return q
}

func uniqueRefs(ts []tableRef) []tableRef {
	var out []tableRef
	seen := map[tableRef]bool{}
	for _, t := range ts {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}
