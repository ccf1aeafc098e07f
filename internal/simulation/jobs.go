package simulation

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// job is one simulated BigQuery job: what was asked (planned when it
// arrives) and what happened to it so far.
type job struct {
	key       events.JobKey
	seq       uint64 // creation order in the organization
	project   *project
	principal *principal
	client    clientKind
	viaQuery  bool // created by jobs.query rather than jobs.insert

	jobType     string // events.JobType*
	statement   string // for queries
	priority    string // QUERY_INTERACTIVE or QUERY_BATCH, for queries
	query       string
	labels      []label
	sql         sqlOut
	sourceURIs  []string
	destURIs    []string
	createDisp  string
	writeDisp   string
	reservation string // as audit entries name it: a reservation, "unreserved"
	userAgent   string
	callerIP    string
	pool        *pool

	parent     *job
	children   []childPlan // for scripts
	scriptHash string      // shared by the ids of a script's statements
	nextIdx    int
	current    *job
	childUse   usage

	created, started, ended time.Time
	runFor                  time.Duration // planned time from start to end
	plan                    usage         // what it reports if it succeeds
	failure                 *failure      // a planned failure
	failAt                  float64       // share of runFor at which it fails
	cancelAfter             time.Duration // a planned user cancellation
	cancelBy                *principal

	state         events.State
	err           *failure
	final         usage
	gen           uint32 // bumped when the end is rescheduled
	admitted      bool   // holds a place in its pool
	insertOnStart bool   // the insert entries wait for the start
	queryPending  bool   // the jobs.query call has not returned yet
	cancelling    bool

	reorder, lost bool
	held          []pendingEntry
	qplan         *plan           // drawn when the jobs API first shows it
	listed        *listedEncoding // its last jobs.list entry, while open
	doneDelivered time.Time
	// lastWritten and lastReceived keep the job's entries in order.
	lastWritten, lastReceived time.Time
}

type label struct{ key, value string }

// childPlan is a statement of a script, run as a child job.
type childPlan struct {
	sql       sqlOut
	statement string
	runFor    time.Duration
	plan      usage
	failure   *failure
	failAt    float64
}

// usage is what a job reports about the work it did.
type usage struct {
	slotMs, processed, billed, rows, loadBytes, extractBytes int64
	hasSlot, hasBytes, hasRows, cacheHit                     bool
}

// scaled returns the share f of u's slot time, as a job that stopped
// part-way reports it, without bytes.
func (u usage) scaled(f float64) usage {
	return usage{slotMs: int64(float64(u.slotMs) * f), hasSlot: u.hasSlot}
}

func (u *usage) add(v usage) {
	u.slotMs += v.slotMs
	u.processed += v.processed
	u.billed += v.billed
	u.hasSlot = u.hasSlot || v.hasSlot
	u.hasBytes = u.hasBytes || v.hasBytes
}

func (j *job) isQuery() bool  { return j.jobType == events.JobTypeQuery }
func (j *job) isScript() bool { return j.statement == "SCRIPT" }
func (j *job) batch() bool    { return j.priority == "QUERY_BATCH" }

// shapes are what each role runs, with how often.
var shapes = map[role]weighted[string]{
	roleAnalyst: newWeighted(weight[string]{"SELECT", 85}, weight[string]{"CREATE_TABLE_AS_SELECT", 5}, weight[string]{"CREATE_VIEW", 2},
		weight[string]{"CREATE_TABLE", 1}, weight[string]{"DROP_TABLE", 1}, weight[string]{"ALTER_TABLE", 0.5}, weight[string]{"CREATE_SCHEMA", 0.5},
		weight[string]{"UPDATE", 1}, weight[string]{"DELETE", 1}, weight[string]{events.JobTypeExtract, 1}, weight[string]{events.JobTypeCopy, 2}),
	roleEngineer: newWeighted(weight[string]{"SELECT", 35}, weight[string]{"INSERT", 10}, weight[string]{"MERGE", 10},
		weight[string]{"CREATE_TABLE_AS_SELECT", 10}, weight[string]{"CREATE_TABLE", 2}, weight[string]{"DROP_TABLE", 3},
		weight[string]{"ALTER_TABLE", 2}, weight[string]{"TRUNCATE_TABLE", 1}, weight[string]{"UPDATE", 3}, weight[string]{"DELETE", 3},
		weight[string]{"SCRIPT", 10}, weight[string]{events.JobTypeLoad, 6}, weight[string]{events.JobTypeCopy, 3}, weight[string]{events.JobTypeExtract, 2}),
	roleDBT: newWeighted(weight[string]{"CREATE_TABLE_AS_SELECT", 35}, weight[string]{"MERGE", 20}, weight[string]{"INSERT", 10},
		weight[string]{"CREATE_VIEW", 15}, weight[string]{"SCRIPT", 10}, weight[string]{"SELECT", 10}),
	roleAirflow: newWeighted(weight[string]{events.JobTypeLoad, 30}, weight[string]{"INSERT", 15}, weight[string]{"MERGE", 15},
		weight[string]{"SCRIPT", 10}, weight[string]{events.JobTypeExtract, 10}, weight[string]{events.JobTypeCopy, 10}, weight[string]{"SELECT", 10}),
	roleBI:        newWeighted(weight[string]{"SELECT", 1}),
	roleLoader:    newWeighted(weight[string]{events.JobTypeLoad, 60}, weight[string]{"MERGE", 30}, weight[string]{"DROP_TABLE", 10}),
	roleScheduler: newWeighted(weight[string]{"INSERT", 40}, weight[string]{"CREATE_TABLE_AS_SELECT", 30}, weight[string]{"MERGE", 30}),
}

var childShapes = newWeighted(weight[string]{"CREATE_TABLE_AS_SELECT", 3}, weight[string]{"INSERT", 3}, weight[string]{"MERGE", 2},
	weight[string]{"SELECT", 2}, weight[string]{"DELETE", 1}, weight[string]{"UPDATE", 1})

// durations are the median and spread of run times per statement or type.
func durationShape(shape string) (median, sigma float64) {
	switch shape {
	case "SELECT":
		return 2.5, 1.3
	case "INSERT", "MERGE", "UPDATE", "DELETE", "CREATE_TABLE_AS_SELECT":
		return 15, 1.3
	case events.JobTypeLoad:
		return 12, 1.2
	case events.JobTypeExtract:
		return 20, 1.0
	case events.JobTypeCopy:
		return 2, 0.8
	}
	return 0.6, 0.5 // DDL
}

// Limits BigQuery enforces.
const (
	maxRunTime    = 6 * time.Hour
	maxV2Query    = 50000  // v2 entries cut the query text here
	maxEntryBytes = 100000 // Cloud Logging keeps audit entries under this
	mib           = 1 << 20
)

// runTime draws a heavy-tailed run time: most jobs take seconds, a few
// take hours; scale stretches it (Config.DurationScale).
func runTime(r *rng, shape string, scale float64) time.Duration {
	median, sigma := durationShape(shape)
	s := r.lognormal(median, sigma)
	if r.chance(0.03) {
		s *= r.lognormal(40, 0.9)
	}
	return time.Duration(math.Min(s, 7*3600) * scale * float64(time.Second))
}

// planJob decides everything about a new top-level job of p.
func (o *Org) planJob(p *project, t time.Time) *job {
	r := o.rng
	pr := p.pick.pick(r)
	j := &job{project: p, principal: pr, client: o.clientFor(pr), created: t, state: events.StatePending}
	j.key = events.JobKey{Project: p.id, Location: p.location}
	if p.second != "" && r.chance(0.15) {
		j.key.Location = p.second
	}
	shape := shapes[pr.role].pick(r)
	j.userAgent, j.callerIP = pick(r, userAgents[j.client]), pr.callerIP
	switch shape {
	case events.JobTypeLoad, events.JobTypeExtract, events.JobTypeCopy:
		o.planTransfer(j, shape)
	default:
		o.planQuery(j, shape)
	}
	j.key.JobID = o.jobID(j)
	j.labels = labelsFor(r, j)
	o.planCancel(j)
	return j
}

// clientFor picks the client a principal uses for one job: people switch
// between the console, bq and notebooks.
func (o *Org) clientFor(pr *principal) clientKind {
	if pr.user && pr.role != roleScheduler && o.rng.chance(0.2) {
		return pick(o.rng, []clientKind{clientConsole, clientBQ, clientPython})
	}
	return pr.client
}

func (o *Org) planQuery(j *job, shape string) {
	r := o.rng
	w := writer{r, j.project}
	j.jobType, j.statement = events.JobTypeQuery, shape
	j.viaQuery = j.client == clientODBC
	j.priority = "QUERY_INTERACTIVE"
	if r.chance(0.07) || (j.principal.role == roleAirflow && r.chance(0.3)) {
		j.priority = "QUERY_BATCH"
	}
	j.pool = o.poolFor(j)
	j.reservation = j.pool.name
	j.createDisp, j.writeDisp = "CREATE_IF_NEEDED", "WRITE_EMPTY"
	if shape == "SCRIPT" {
		o.planScript(j, w)
		return
	}
	if shape == "SELECT" && r.chance(0.004) {
		j.sql = w.longSelect(longQuerySize(r))
	} else {
		j.sql = w.statement(shape, j.principal)
	}
	j.query = j.sql.text
	o.planSelectDestination(j)
	j.runFor, j.plan = planUsage(r, shape, j.sql, o.cfg.DurationScale)
	j.failure, j.failAt = planFailure(r, j, shape)
}

// longQuerySize draws a length above maxV2Query: mostly such that the v1
// entry still carries the whole text, sometimes beyond what fits.
func longQuerySize(r *rng) int {
	if r.chance(0.2) {
		return r.between(maxEntryBytes, 2*maxEntryBytes)
	}
	return r.between(maxV2Query+2000, maxEntryBytes-10000)
}

// planSelectDestination gives a plain query the anonymous table BigQuery
// writes its results to.
func (o *Org) planSelectDestination(j *job) {
	if j.statement == "SELECT" {
		j.sql.dest = tableRef{j.project.id, anonDataset(j.project.id, j.principal.email), "anon" + o.rng.hex(40)}
		j.writeDisp = "WRITE_TRUNCATE"
	}
}

func (o *Org) planScript(j *job, w writer) {
	r := o.rng
	n := r.between(2, 7)
	j.scriptHash = r.hex(32)
	var stmts []sqlOut
	for range n {
		shape := childShapes.pick(r)
		c := childPlan{statement: shape, sql: w.statement(shape, j.principal)}
		c.runFor, c.plan = planUsage(r, shape, c.sql, o.cfg.DurationScale)
		cj := &job{key: j.key, jobType: events.JobTypeQuery, statement: shape, project: j.project, sql: c.sql, runFor: c.runFor}
		c.failure, c.failAt = planFailure(r, cj, shape)
		j.children = append(j.children, c)
		j.runFor += c.runFor + 100*time.Millisecond
		stmts = append(stmts, c.sql)
	}
	j.query = script(stmts[0].refs[0].dataset, stmts)
	j.plan = usage{hasSlot: true, hasBytes: true}
}

func (o *Org) planTransfer(j *job, kind string) {
	r := o.rng
	w := writer{r, j.project}
	j.jobType = kind
	j.pool = j.project.onDemandPool(j.key.Location)
	j.reservation = "default-pipeline"
	t := w.writable()
	switch kind {
	case events.JobTypeLoad:
		j.sql.dest = tableRef{j.project.id, "raw", t.def.name}
		if j.client != clientBQ || r.chance(0.5) {
			format := pick(r, []string{"parquet", "avro", "csv", "json"})
			j.sourceURIs = []string{"gs://" + j.project.bucket + "/" + t.def.name + "/dt=" + j.created.Format("2006-01-02") + "/part-*." + format}
		}
		j.createDisp, j.writeDisp = "CREATE_IF_NEEDED", pick(r, []string{"WRITE_APPEND", "WRITE_APPEND", "WRITE_TRUNCATE"})
	case events.JobTypeExtract:
		j.sql.refs = []tableRef{t.ref}
		j.destURIs = []string{"gs://" + j.project.id + "-exports/" + t.ref.table + "/" + j.created.Format("20060102") + "/" + t.ref.table + "-*.csv.gz"}
	case events.JobTypeCopy:
		j.sql.refs = []tableRef{t.ref}
		j.sql.dest = tableRef{j.project.id, pick(r, []string{"backup", "snapshots", t.ref.dataset}), t.ref.table + "_" + j.created.Format("20060102")}
		j.createDisp, j.writeDisp = "CREATE_IF_NEEDED", "WRITE_EMPTY"
	}
	j.runFor, j.plan = planUsage(r, kind, j.sql, o.cfg.DurationScale)
	j.failure, j.failAt = planFailure(r, j, kind)
}

// planUsage draws the run time and the statistics of a successful run.
func planUsage(r *rng, shape string, s sqlOut, scale float64) (time.Duration, usage) {
	d := runTime(r, shape, scale)
	ms := max(d.Milliseconds(), 1)
	slots := math.Max(0.2, math.Min(r.lognormal(8, 1.1), 4000))
	u := usage{}
	switch shape {
	case "SELECT", "INSERT", "MERGE", "UPDATE", "DELETE", "CREATE_TABLE_AS_SELECT":
		if shape == "SELECT" && r.chance(0.06) {
			return time.Duration(r.between(40, 400)) * time.Millisecond, usage{hasSlot: true, hasBytes: true, hasRows: true, cacheHit: true,
				rows: int64(r.lognormal(200, 2))}
		}
		median, rows := 2e9, 5e4
		if shape == "SELECT" {
			median, rows = 2e8, 300
		}
		u.processed = int64(math.Min(r.lognormal(median, 2.2), 4e14))
		if len(s.refs) == 0 {
			u.processed = 0
		}
		u.billed = billed(u.processed)
		u.slotMs, u.hasSlot, u.hasBytes = int64(float64(ms)*slots), true, true
		u.rows, u.hasRows = int64(r.lognormal(rows, 2.5)), true
	case events.JobTypeLoad:
		u.loadBytes = int64(r.lognormal(5e8, 1.8))
		u.slotMs, u.hasSlot = int64(float64(ms)*math.Min(slots, 50)), true
	case events.JobTypeExtract:
		u.extractBytes = int64(r.lognormal(2e9, 1.5))
		u.slotMs, u.hasSlot = int64(float64(ms)*math.Min(slots, 50)), true
	}
	return d, u
}

// billed is what on-demand pricing bills for the bytes a query processed:
// rounded up to a whole MiB, with a 10 MiB minimum.
func billed(processed int64) int64 {
	return max(10*mib, (processed+mib-1)/mib*mib)
}

// planCancel decides whether someone will cancel the job while it runs.
func (o *Org) planCancel(j *job) {
	r := o.rng
	if j.runFor > 10*time.Second && j.failure == nil && r.chance(0.01) {
		j.cancelAfter = time.Duration(r.uniform(0.1, 0.9) * float64(j.runFor))
		j.cancelBy = j.principal
		if r.chance(0.2) {
			j.cancelBy = pick(r, j.project.principals)
		}
	}
}

// poolFor is where a query runs: its project's reservation at the
// project's main location, or on demand.
func (o *Org) poolFor(j *job) *pool {
	p := j.project
	if p.reservation != nil && j.key.Location == p.location {
		return p.reservation
	}
	return p.onDemandPool(j.key.Location)
}

func labelsFor(r *rng, j *job) []label {
	var ls []label
	switch j.principal.role {
	case roleDBT:
		name := lowerSnake(j.project.domain.name) + "_" + j.sql.dest.table
		ls = []label{{"app", "dbt"}, {"dbt_version", "1_7_4"}, {"node_id", "model_" + truncateLabel(name)}, {"target_name", "prod"}}
	case roleAirflow:
		ls = []label{{"airflow-dag", pick(r, airflowDAGs)}, {"airflow-task", pick(r, airflowTasks)}}
	case roleScheduler:
		ls = []label{{"data_source_id", "scheduled_query"}}
	default:
		if j.principal.user && r.chance(0.2) {
			ls = []label{{"team", pick(r, []string{"finance", "growth", "data-eng", "ops", "risk"})}, {"cost-center", "cc-" + strconv.Itoa(r.between(1000, 9999))}}
		}
	}
	slices.SortFunc(ls, func(a, b label) int { return cmp.Compare(a.key, b.key) })
	return ls
}

// truncateLabel keeps a label value within the 63 characters allowed.
func truncateLabel(s string) string {
	if len(s) > 57 {
		return s[:57]
	}
	return s
}

var (
	airflowDAGs  = []string{"daily_sales_load", "hourly_events_ingest", "finance_month_close", "ml_feature_refresh", "partner_exports"}
	airflowTasks = []string{"load_orders", "merge_customers", "export_report", "copy_snapshot", "build_marts", "check_freshness"}
)

// jobID gives the job an id in the shape its client uses.
func (o *Org) jobID(j *job) string {
	for {
		id := o.newJobID(j)
		if _, taken := o.jobs[events.JobKey{Project: j.key.Project, Location: j.key.Location, JobID: id}]; !taken {
			return id
		}
	}
}

func (o *Org) newJobID(j *job) string {
	r := o.rng
	ms := j.created.UnixMilli()
	switch j.client {
	case clientConsole:
		return "bquxjob_" + r.hex(r.between(7, 8)) + "_" + strconv.FormatInt(ms, 16)
	case clientBQ:
		return "bqjob_r" + r.hex(16) + "_" + leftPad(strconv.FormatInt(ms, 16), 16) + "_1"
	case clientODBC:
		return "job_" + r.text(base62Digits, 28)
	case clientAirflow:
		return "airflow_" + pick(r, airflowDAGs) + "_" + pick(r, airflowTasks) + "_" + j.created.Format("2006_01_02T15_04_05_00_00") + "_" + r.hex(32)
	case clientScheduled:
		return "scheduled_query_" + r.hex(8) + "-0000-" + r.hex(4) + "-" + r.hex(4) + "-" + r.hex(12)
	}
	return r.uuid()
}

func leftPad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s
}
