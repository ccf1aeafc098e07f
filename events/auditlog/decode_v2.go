package auditlog

import (
	"github.com/bqobserver/bqobserver/events"
)

// v2Metadata is the wire shape of google.cloud.audit.BigQueryAuditMetadata
// (protoPayload.metadata). Only the two job-state events are decoded; the
// other events are recognised so that a skip can name them.
type v2Metadata struct {
	Type         string       `json:"@type"`
	JobInsertion *v2JobEvent  `json:"jobInsertion"`
	JobChange    *v2JobChange `json:"jobChange"`

	JobDeletion             present `json:"jobDeletion"`
	DatasetCreation         present `json:"datasetCreation"`
	DatasetChange           present `json:"datasetChange"`
	DatasetDeletion         present `json:"datasetDeletion"`
	TableCreation           present `json:"tableCreation"`
	TableChange             present `json:"tableChange"`
	TableDeletion           present `json:"tableDeletion"`
	TableDataRead           present `json:"tableDataRead"`
	TableDataChange         present `json:"tableDataChange"`
	ModelDeletion           present `json:"modelDeletion"`
	ModelCreation           present `json:"modelCreation"`
	ModelMetadataChange     present `json:"modelMetadataChange"`
	ModelDataChange         present `json:"modelDataChange"`
	ModelDataRead           present `json:"modelDataRead"`
	RoutineCreation         present `json:"routineCreation"`
	RoutineChange           present `json:"routineChange"`
	RoutineDeletion         present `json:"routineDeletion"`
	RowAccessPolicyCreation present `json:"rowAccessPolicyCreation"`
	RowAccessPolicyChange   present `json:"rowAccessPolicyChange"`
	RowAccessPolicyDeletion present `json:"rowAccessPolicyDeletion"`
	UnlinkDataset           present `json:"unlinkDataset"`
}

// otherEvent names the non-job event the metadata carries, if any.
func (m *v2Metadata) otherEvent() string {
	others := [...]struct {
		name string
		seen present
	}{
		{"jobDeletion", m.JobDeletion}, {"datasetCreation", m.DatasetCreation},
		{"datasetChange", m.DatasetChange}, {"datasetDeletion", m.DatasetDeletion},
		{"tableCreation", m.TableCreation}, {"tableChange", m.TableChange},
		{"tableDeletion", m.TableDeletion}, {"tableDataRead", m.TableDataRead},
		{"tableDataChange", m.TableDataChange}, {"modelDeletion", m.ModelDeletion},
		{"modelCreation", m.ModelCreation}, {"modelMetadataChange", m.ModelMetadataChange},
		{"modelDataChange", m.ModelDataChange}, {"modelDataRead", m.ModelDataRead},
		{"routineCreation", m.RoutineCreation}, {"routineChange", m.RoutineChange},
		{"routineDeletion", m.RoutineDeletion}, {"rowAccessPolicyCreation", m.RowAccessPolicyCreation},
		{"rowAccessPolicyChange", m.RowAccessPolicyChange}, {"rowAccessPolicyDeletion", m.RowAccessPolicyDeletion},
		{"unlinkDataset", m.UnlinkDataset},
	}
	for _, o := range others {
		if o.seen {
			return o.name
		}
	}
	return ""
}

type v2JobEvent struct {
	Job *v2Job `json:"job"`
}

type v2JobChange struct {
	Before string `json:"before"`
	After  string `json:"after"`
	Job    *v2Job `json:"job"`
}

// v2Job is BigQueryAuditMetadata.Job.
type v2Job struct {
	JobName   string      `json:"jobName"`
	JobConfig v2JobConfig `json:"jobConfig"`
	JobStatus struct {
		JobState    string     `json:"jobState"`
		ErrorResult *rpcStatus `json:"errorResult"`
	} `json:"jobStatus"`
	JobStats v2JobStats `json:"jobStats"`
}

type v2JobConfig struct {
	Type        string `json:"type"`
	QueryConfig *struct {
		Query            string `json:"query"`
		QueryTruncated   bool   `json:"queryTruncated"`
		DestinationTable string `json:"destinationTable"`
		Priority         string `json:"priority"`
		StatementType    string `json:"statementType"`
	} `json:"queryConfig"`
	LoadConfig *struct {
		SourceURIs       []string `json:"sourceUris"`
		DestinationTable string   `json:"destinationTable"`
	} `json:"loadConfig"`
	ExtractConfig *struct {
		DestinationURIs []string `json:"destinationUris"`
		SourceTable     string   `json:"sourceTable"`
		SourceModel     string   `json:"sourceModel"`
	} `json:"extractConfig"`
	TableCopyConfig *struct {
		SourceTables     []string `json:"sourceTables"`
		DestinationTable string   `json:"destinationTable"`
	} `json:"tableCopyConfig"`
	Labels map[string]string `json:"labels"`
	// Reservation is the reservation the user asked for.
	Reservation string `json:"reservation"`
}

type v2JobStats struct {
	CreateTime       string             `json:"createTime"`
	StartTime        string             `json:"startTime"`
	EndTime          string             `json:"endTime"`
	QueryStats       *v2QueryStats      `json:"queryStats"`
	TotalSlotMs      int64Text          `json:"totalSlotMs"`
	Reservation      string             `json:"reservation"`
	ReservationUsage []reservationUsage `json:"reservationUsage"`
	ParentJobName    string             `json:"parentJobName"`
}

type v2QueryStats struct {
	TotalProcessedBytes int64Text `json:"totalProcessedBytes"`
	TotalBilledBytes    int64Text `json:"totalBilledBytes"`
	BillingTier         int64Text `json:"billingTier"`
	ReferencedTables    []string  `json:"referencedTables"`
	ReferencedViews     []string  `json:"referencedViews"`
	OutputRowCount      int64Text `json:"outputRowCount"`
	CacheHit            *bool     `json:"cacheHit"`
}

// v2Selection is the job event the metadata carries.
type v2Selection struct {
	key   string // the metadata member: jobInsertion or jobChange
	job   *v2Job
	kind  events.Kind // the event's kind unless the job is DONE
	state events.State
}

func (m *v2Metadata) selectJob() (v2Selection, bool) {
	switch {
	case m.JobChange != nil:
		job := orEmptyV2(m.JobChange.Job)
		state := parseState(m.JobChange.After)
		if state == events.StateUnknown {
			state = parseState(job.JobStatus.JobState)
		}
		return v2Selection{key: "jobChange", job: job, kind: events.KindStateChanged, state: state}, true
	case m.JobInsertion != nil:
		job := orEmptyV2(m.JobInsertion.Job)
		state := parseState(job.JobStatus.JobState)
		if state == events.StateUnknown {
			state = events.StatePending
		}
		return v2Selection{key: "jobInsertion", job: job, kind: events.KindInserted, state: state}, true
	}
	return v2Selection{}, false
}

func orEmptyV2(j *v2Job) *v2Job {
	if j == nil {
		return &v2Job{}
	}
	return j
}

// decode turns the metadata into its job event, or says why there is none.
func (m *v2Metadata) decode(method string, res *resource) (events.Event, error) {
	sel, ok := m.selectJob()
	if !ok {
		return events.Event{}, skip(SkipNotJob, "%s carries %s", first(method, "BigQueryAuditMetadata"),
			first(m.otherEvent(), "no job event"))
	}
	return sel.event(method, res)
}

func (s *v2Selection) event(method string, res *resource) (events.Event, error) {
	j := s.job
	key, err := j.key(res)
	if err != nil {
		return events.Event{}, err
	}
	var c converter
	ev := events.Event{
		Kind:   s.kind,
		State:  s.state,
		Job:    key,
		Error:  j.JobStatus.ErrorResult.jobError(),
		Facts:  j.facts(&c),
		Source: events.Source{Format: "v2", Method: methodKey(method, s.key)},
	}
	if ev.State == events.StateDone {
		ev.Kind = events.KindCompleted
	}
	return ev, c.err
}

// key reads the job's identity: project and id from the job name, location
// from the resource labels (v2 job names carry none) or a location-qualified
// name. An absent name gives an empty key, for the caller to judge.
func (j *v2Job) key(res *resource) (events.JobKey, error) {
	if j.JobName == "" {
		return events.JobKey{}, nil
	}
	p, ok := parseJobPath(j.JobName)
	if !ok {
		return events.JobKey{}, invalid(ReasonBadField, nil, "jobName %q is not projects/<project>/jobs/<id>", truncate(j.JobName, 128))
	}
	return events.JobKey{Project: p.project, Location: first(res.Labels.Location, p.location), JobID: p.id}, nil
}

func (j *v2Job) facts(c *converter) events.Facts {
	st := &j.JobStats
	f := events.Facts{
		JobType:     j.JobConfig.jobType(),
		Labels:      nonEmptyMap(j.JobConfig.Labels),
		Reservation: first(reservation(st.Reservation, st.ReservationUsage), j.JobConfig.Reservation),
		ParentJobID: jobIDOf(st.ParentJobName),
		CreateTime:  c.time("jobStats.createTime", st.CreateTime),
		StartTime:   c.time("jobStats.startTime", st.StartTime),
		EndTime:     c.time("jobStats.endTime", st.EndTime),
		SlotMs:      c.int64("jobStats.totalSlotMs", st.TotalSlotMs),
	}
	j.JobConfig.describe(&f)
	st.QueryStats.describe(c, &f)
	return f
}

// describe fills the facts that depend on the kind of job.
func (cfg *v2JobConfig) describe(f *events.Facts) {
	if q := cfg.QueryConfig; q != nil {
		f.Query, f.QueryTruncated = q.Query, q.QueryTruncated
		f.StatementType, f.Priority = q.StatementType, q.Priority
		f.DestinationTable = tablePath(q.DestinationTable)
	}
	if l := cfg.LoadConfig; l != nil {
		f.SourceURIs, f.DestinationTable = nonEmpty(l.SourceURIs), tablePath(l.DestinationTable)
	}
	if e := cfg.ExtractConfig; e != nil {
		var src tableList
		src.add(tablePath(first(e.SourceTable, e.SourceModel)))
		f.DestinationURIs, f.SourceTables = nonEmpty(e.DestinationURIs), src.names
	}
	if t := cfg.TableCopyConfig; t != nil {
		var src tableList
		src.addV2(t.SourceTables)
		f.SourceTables, f.DestinationTable = src.names, tablePath(t.DestinationTable)
	}
}

func (q *v2QueryStats) describe(c *converter, f *events.Facts) {
	if q == nil {
		return
	}
	var refs tableList
	refs.addV2(q.ReferencedTables)
	refs.addV2(q.ReferencedViews)
	f.ReferencedTables = refs.names
	f.BytesProcessed = c.int64("queryStats.totalProcessedBytes", q.TotalProcessedBytes)
	f.BytesBilled = c.int64("queryStats.totalBilledBytes", q.TotalBilledBytes)
	f.BillingTier = c.int64("queryStats.billingTier", q.BillingTier)
	f.OutputRows = c.int64("queryStats.outputRowCount", q.OutputRowCount)
	f.CacheHit = q.CacheHit
}

// jobType normalises the v2 job type (IMPORT is LOAD, EXPORT is EXTRACT),
// falling back to which configuration is set.
func (cfg *v2JobConfig) jobType() string {
	switch cfg.Type {
	case "IMPORT":
		return events.JobTypeLoad
	case "EXPORT":
		return events.JobTypeExtract
	case "", "TYPE_UNSPECIFIED":
	default:
		return cfg.Type
	}
	switch {
	case cfg.QueryConfig != nil:
		return events.JobTypeQuery
	case cfg.LoadConfig != nil:
		return events.JobTypeLoad
	case cfg.ExtractConfig != nil:
		return events.JobTypeExtract
	case cfg.TableCopyConfig != nil:
		return events.JobTypeCopy
	}
	return ""
}
