package simulation

import (
	"crypto/sha256"
	"encoding/base64"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	bq "google.golang.org/api/bigquery/v2"

	"github.com/bqobserver/bqobserver/events"
)

// streamPlan seeds a job's query plan from its identity, so that the jobs
// API draws nothing from the simulation's own streams: answering requests
// never changes the entries.
const streamPlan = 0x5eed_91a7

// wireJob is j as jobs.get returns it at now; withPlan adds the query plan
// and timeline.
func (o *Org) wireJob(j *job, now time.Time, withPlan bool) *bq.Job {
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
		Statistics:       j.wireStats(now, withPlan),
		Status:           j.wireStatus(),
	}
}

// listedJob is j as jobs.list returns it: without the query plan, and in
// the minimal projection without configuration, status and user.
func (o *Org) listedJob(j *job, now time.Time, minimal bool) *bq.JobListJobs {
	l := &bq.JobListJobs{
		Kind:         "bigquery#job",
		Id:           jobPath(j.key.Project, j.key.Location, j.key.JobID),
		JobReference: &bq.JobReference{ProjectId: j.key.Project, Location: j.key.Location, JobId: j.key.JobID},
		State:        string(j.state),
		Statistics:   j.wireStats(now, false),
	}
	status := j.wireStatus()
	l.ErrorResult = status.ErrorResult
	if !minimal {
		l.Configuration, l.Status = j.wireConfig(), status
		l.UserEmail, l.PrincipalSubject = j.principal.email, subject(j.principal)
	}
	return l
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

// usageAt is what the job has used by now, and the share of its work done:
// its final usage once done, a share of its plan while running (or, for a
// script, what its statements used so far).
func (j *job) usageAt(now time.Time) (usage, float64) {
	switch {
	case j.state == events.StateDone:
		return j.final, j.doneShare()
	case j.state == events.StatePending:
		return usage{}, 0
	case j.isScript():
		u := j.childUse
		if c := j.current; c != nil {
			cu, _ := c.usageAt(now)
			u.add(cu)
		}
		return u, j.progress(now)
	}
	f := j.progress(now)
	u := j.plan.scaled(f)
	if j.plan.hasBytes {
		u.processed, u.hasBytes = int64(float64(j.plan.processed)*f), true
	}
	return u, f
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

func (j *job) wireStats(now time.Time, withPlan bool) *bq.JobStatistics {
	u, f := j.usageAt(now)
	st := &bq.JobStatistics{CreationTime: ms(j.created), StartTime: ms(j.started), EndTime: ms(j.ended)}
	if u.hasSlot {
		st.TotalSlotMs = u.slotMs
	}
	if u.hasBytes {
		st.TotalBytesProcessed = u.processed
	}
	if j.pool != nil && !j.pool.onDemand && !j.started.IsZero() {
		st.ReservationId = j.reservation
	}
	if j.parent != nil {
		st.ParentJobId = j.parent.key.JobID
		st.ScriptStatistics = &bq.ScriptStatistics{EvaluationKind: "STATEMENT"}
	}
	if j.isScript() {
		st.NumChildJobs = int64(j.nextIdx)
	}
	j.typeStats(st, u, f, now, withPlan)
	return st
}

func (j *job) typeStats(st *bq.JobStatistics, u usage, f float64, now time.Time, withPlan bool) {
	done := j.state == events.StateDone
	switch j.jobType {
	case events.JobTypeQuery:
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
		if withPlan && !j.started.IsZero() && j.plan.hasSlot && !j.isScript() && !u.cacheHit {
			p := j.queryPlan()
			q.QueryPlan, q.Timeline = p.stages(j, f), p.timeline(j, f)
		}
		st.Query = q
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

// plan is a query's execution plan: stages that run one after the other,
// each doing a share of the work in the same share of the run time, so
// that the stages' slot time always adds up to the job's.
type plan struct {
	names  []string
	shares []float64 // of the work, summing to 1
	inputs []int64   // parallel inputs per stage
	rows   []int64   // records read per stage
	steps  [][]*bq.ExplainQueryStep
}

var stageKinds = []string{"Join+", "Aggregate+", "Compute+", "Repartition", "Sort+", "Aggregate", "Join"}

// queryPlan draws the job's plan from its identity alone.
func (j *job) queryPlan() *plan {
	h := fnv.New64a()
	h.Write([]byte(j.key.String()))
	r := newRNG(h.Sum64(), streamPlan)
	n := 2 + r.intn(3)
	if j.plan.processed > 1e10 {
		n = 5 + r.intn(6)
	}
	p := &plan{}
	total := 0.0
	for i := range n {
		kind := pick(r, stageKinds)
		switch i {
		case 0:
			kind = "Input"
		case n - 1:
			kind = "Output"
		}
		p.names = append(p.names, "S"+leftPad(strconv.Itoa(i), 2)+": "+kind)
		w := r.uniform(0.5, 2)
		p.shares = append(p.shares, w)
		total += w
		p.inputs = append(p.inputs, int64(max(1, min(5000, j.plan.processed/(64*mib)>>uint(i)))))
		p.rows = append(p.rows, int64(max(1, float64(j.plan.processed)/float64(200*(i+1)))))
		p.steps = append(p.steps, stageSteps(j, i, kind))
	}
	for i := range p.shares {
		p.shares[i] /= total
	}
	return p
}

func stageSteps(j *job, i int, kind string) []*bq.ExplainQueryStep {
	out := "__stage" + leftPad(strconv.Itoa(i), 2) + "_output"
	var src string
	if i == 0 && len(j.sql.refs) > 0 {
		src = "FROM " + j.sql.refs[0].dotted()
	} else {
		src = "FROM __stage" + leftPad(strconv.Itoa(max(0, i-1)), 2) + "_output"
	}
	steps := []*bq.ExplainQueryStep{{Kind: "READ", Substeps: []string{"$1, $2, $3", src}}}
	switch {
	case strings.HasPrefix(kind, "Aggregate"):
		steps = append(steps, &bq.ExplainQueryStep{Kind: "AGGREGATE", Substeps: []string{"GROUP BY $30 := $1", "$20 := SUM($2)"}})
	case strings.HasPrefix(kind, "Join"):
		steps = append(steps, &bq.ExplainQueryStep{Kind: "JOIN", Substeps: []string{"INNER HASH JOIN EACH  WITH EACH ON $1 = $10"}})
	case strings.HasPrefix(kind, "Sort"):
		steps = append(steps, &bq.ExplainQueryStep{Kind: "SORT", Substeps: []string{"$2 DESC"}})
	}
	return append(steps, &bq.ExplainQueryStep{Kind: "WRITE", Substeps: []string{"$1, $2", "TO " + out}})
}

// stageProgress is how far stage i is when the job is f done.
func (p *plan) stageProgress(i int, f float64) float64 {
	start := 0.0
	for k := range i {
		start += p.shares[k]
	}
	return max(0, min(1, (f-start)/p.shares[i]))
}

func (p *plan) stages(j *job, f float64) []*bq.ExplainQueryStage {
	var out []*bq.ExplainQueryStage
	start, total := 0.0, float64(j.plan.slotMs)
	for i, name := range p.names {
		sp := p.stageProgress(i, f)
		s := &bq.ExplainQueryStage{
			Id: int64(i), Name: name, Status: stageStatus(j, sp), ParallelInputs: p.inputs[i],
			CompletedParallelInputs: int64(float64(p.inputs[i]) * sp), SlotMs: int64(total * p.shares[i] * sp),
			RecordsRead: int64(float64(p.rows[i]) * sp), RecordsWritten: int64(float64(p.rows[i]) * sp / 4),
			WaitRatioAvg: 0.02, WaitRatioMax: 0.1, ReadRatioAvg: 0.3, ReadRatioMax: 0.6,
			ComputeRatioAvg: 0.5, ComputeRatioMax: 1, WriteRatioAvg: 0.1, WriteRatioMax: 0.2, Steps: p.steps[i],
		}
		if i > 0 {
			s.InputStages = []int64{int64(i - 1)}
		}
		if sp > 0 {
			s.StartMs = j.started.Add(time.Duration(start * float64(j.runFor))).UnixMilli()
		}
		if sp >= 1 {
			s.EndMs = j.started.Add(time.Duration((start + p.shares[i]) * float64(j.runFor))).UnixMilli()
		}
		start += p.shares[i]
		out = append(out, s)
	}
	return out
}

func stageStatus(j *job, sp float64) string {
	switch {
	case sp >= 1:
		return "COMPLETE"
	case j.state != events.StateDone && sp > 0:
		return "RUNNING"
	case j.state != events.StateDone:
		return "PENDING"
	case j.cancelling:
		return "CANCELLED"
	}
	return "FAILED"
}

// maxTimeline bounds the samples of a timeline.
const maxTimeline = 100

// timeline samples the job's progress at regular points of its run, up to
// the share f of its work: the same samples at every call, more as it runs.
func (p *plan) timeline(j *job, f float64) []*bq.QueryTimelineSample {
	if j.runFor <= 0 {
		return nil
	}
	step := max(time.Second, j.runFor/maxTimeline).Truncate(time.Millisecond)
	var units int64
	for _, n := range p.inputs {
		units += n
	}
	var out []*bq.QueryTimelineSample
	for e := step; ; e += step {
		sf := float64(e) / float64(j.runFor)
		if sf > f {
			sf = f
		}
		done := int64(float64(units) * sf)
		pending := units - done
		out = append(out, &bq.QueryTimelineSample{
			ElapsedMs: e.Milliseconds(), TotalSlotMs: int64(float64(j.plan.slotMs) * sf),
			CompletedUnits: done, PendingUnits: pending, ActiveUnits: min(pending, 1+pending/4), EstimatedRunnableUnits: pending / 2,
		})
		if sf >= f {
			return out
		}
	}
}
