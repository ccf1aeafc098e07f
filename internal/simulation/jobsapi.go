package simulation

import (
	"encoding/json"
	"maps"
	"net/http"
	"sync"
	"time"

	bq "google.golang.org/api/bigquery/v2"

	"github.com/bqobserver/bqobserver/events"
)

// JobsAPI serves the BigQuery v2 REST jobs API over the organization's
// jobs, in the shapes the official clients read: jobs.list, jobs.get and
// jobs.cancel, under /bigquery/v2/projects/{project}/jobs (the path the
// clients use with an endpoint of http://host:port/bigquery/v2/) and the
// same paths without the /bigquery/v2 prefix.
//
// Answers reflect the simulation at the current simulated time. A running
// job's statistics, query plan and timeline are refreshed every
// Config.StatisticsInterval, only grow, and end equal to what its
// completion entries report. A cancel is logged as the operator's
// jobs.cancel call and stops the job shortly after, with BigQuery's
// cancellation error. A job is forgotten (404) Config.Retention after its
// end.
//
// Requests are not authenticated. Deny and DenyMethod switch on the 403 a
// caller without permission gets; Faults, SetFaults and FailNext inject
// rate limiting and backend errors. Calls and Answers count what was
// asked and answered, for tests and benchmarks.
type JobsAPI struct {
	org *Org
	mux *http.ServeMux
	now func() time.Time // the wall clock of the per-project quotas

	mu      sync.Mutex
	calls   map[Call]int
	answers map[Answer]int
	denied  map[Call]bool
	faults  Faults
	failing []*failRule
	quota   map[string]quotaWindow
	rng     *rng
}

// Call identifies the calls of one API method on one project.
type Call struct {
	// Method is jobs.list, jobs.get or jobs.cancel.
	Method  string
	Project string
}

// Answer identifies the answers with one HTTP status to the calls of one
// method on one project.
type Answer struct {
	Method  string
	Project string
	Status  int
}

// API methods, as Call.Method names them.
const (
	MethodList   = "jobs.list"
	MethodGet    = "jobs.get"
	MethodCancel = "jobs.cancel"
)

// streamAPI seeds the injected faults, apart from the organization's
// streams: calls to the API never change the entries.
const streamAPI = 0x5eed_a919

// JobsAPI returns the organization's jobs API.
func (o *Org) JobsAPI() *JobsAPI { return o.api }

func newJobsAPI(o *Org) *JobsAPI {
	a := &JobsAPI{
		org: o, mux: http.NewServeMux(), now: time.Now,
		calls: map[Call]int{}, answers: map[Answer]int{}, denied: map[Call]bool{},
		faults: o.cfg.Faults.withDefaults(), quota: map[string]quotaWindow{}, rng: newRNG(o.cfg.Seed, streamAPI),
	}
	for _, prefix := range []string{"/bigquery/v2", ""} {
		a.mux.HandleFunc("GET "+prefix+"/projects/{project}/jobs", a.list)
		a.mux.HandleFunc("GET "+prefix+"/projects/{project}/jobs/{job}", a.get)
		a.mux.HandleFunc("POST "+prefix+"/projects/{project}/jobs/{job}/cancel", a.cancel)
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		notFound("Not found: " + r.Method + " " + r.URL.Path).write(w)
	})
	return a
}

// ServeHTTP serves one request.
func (a *JobsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Calls returns how many calls each method got per project so far,
// denied and failed calls included.
func (a *JobsAPI) Calls() map[Call]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.calls)
}

// Answers returns how many answers of each HTTP status each method gave
// per project so far.
func (a *JobsAPI) Answers() map[Answer]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.answers)
}

// Faults returns the faults the API injects now.
func (a *JobsAPI) Faults() Faults {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.faults
}

func (a *JobsAPI) answered(c Call, status int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.answers[Answer{Method: c.Method, Project: c.Project, Status: status}]++
}

// serve answers one call: with the fault or denial admit finds, or with
// what do gives.
func (a *JobsAPI) serve(w http.ResponseWriter, c Call, denial func() *apiError, do func() (any, *apiError)) {
	var body any
	e := a.admit(c, denial)
	if e == nil {
		body, e = do()
	}
	if e != nil {
		a.answered(c, e.status)
		e.write(w)
		return
	}
	a.answered(c, writeJSON(w, body))
}

func (a *JobsAPI) list(w http.ResponseWriter, r *http.Request) {
	c := Call{Method: MethodList, Project: r.PathValue("project")}
	q, err := parseListQuery(r)
	denial := func() *apiError { return accessDenied("Project "+c.Project, q.permission(), "in project "+c.Project) }
	a.serve(w, c, denial, func() (any, *apiError) {
		if err != nil {
			return nil, invalid(err.Error())
		}
		return a.org.listJobs(c.Project, q)
	})
}

func (a *JobsAPI) get(w http.ResponseWriter, r *http.Request) {
	a.jobCall(w, r, MethodGet, "bigquery.jobs.get", func(k events.JobKey) (any, bool) {
		j, ok := a.org.getJob(k)
		return j, ok
	})
}

func (a *JobsAPI) cancel(w http.ResponseWriter, r *http.Request) {
	a.jobCall(w, r, MethodCancel, "bigquery.jobs.update", func(k events.JobKey) (any, bool) {
		j, ok := a.org.cancelJob(k)
		return &bq.JobCancelResponse{Kind: "bigquery#jobCancelResponse", Job: j}, ok
	})
}

// jobCall serves the part that jobs.get and jobs.cancel share: 403 naming
// perm for a denied project, 404 for a job the API does not know, and
// otherwise what do gives for the job. The key's location is the
// request's, empty when it names none.
func (a *JobsAPI) jobCall(w http.ResponseWriter, r *http.Request, method, perm string, do func(events.JobKey) (any, bool)) {
	k := events.JobKey{Project: r.PathValue("project"), Location: r.URL.Query().Get("location"), JobID: r.PathValue("job")}
	name := jobPath(k.Project, k.Location, k.JobID)
	denial := func() *apiError { return accessDenied("Job "+name, perm, "for job "+name) }
	a.serve(w, Call{Method: method, Project: k.Project}, denial, func() (any, *apiError) {
		body, ok := do(k)
		if !ok {
			return nil, notFound("Not found: Job " + name)
		}
		return body, nil
	})
}

// jobPath names a job as BigQuery's messages do: project:location.id.
func jobPath(project, location, id string) string {
	if location == "" {
		return project + ":" + id
	}
	return project + ":" + location + "." + id
}

// lookup finds a job the API still knows by project, id and location.
// Without a location it finds jobs in the US and EU multi-regions only, as
// BigQuery does: "You must specify the location to run the job for the
// following scenarios: If the location to run a job is not in the us or
// the eu multi-regional location; If the job's location is in a single
// region" (https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/get).
func (o *Org) lookup(k events.JobKey, now time.Time) *job {
	if k.Location != "" {
		return o.known(o.jobs[k], now)
	}
	for _, loc := range []string{"US", "EU"} {
		if j := o.known(o.jobs[events.JobKey{Project: k.Project, Location: loc, JobID: k.JobID}], now); j != nil {
			return j
		}
	}
	return nil
}

// known returns j unless it is nil or expired.
func (o *Org) known(j *job, now time.Time) *job {
	if j == nil || o.expired(j, now) {
		return nil
	}
	return j
}

// expired reports whether the API has forgotten j: it ended longer than
// the retention ago. BigQuery keeps job information "for a six month
// period after creation"
// (https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/list);
// see Config.Retention for why the simulation counts from the end.
func (o *Org) expired(j *job, now time.Time) bool {
	return j.state == events.StateDone && now.Sub(j.ended) > o.cfg.Retention
}

// getJob answers jobs.get.
func (o *Org) getJob(k events.JobKey) (*bq.Job, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.syncNow()
	j := o.lookup(k, now)
	if j == nil {
		return nil, false
	}
	return o.wireJob(j, now), true
}

// cancelJob answers jobs.cancel: it logs the call and stops the job
// shortly after. The job it returns is as of the call, so usually still
// running, as BigQuery's answer is.
func (o *Org) cancelJob(k events.JobKey) (*bq.Job, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.syncNow()
	j := o.lookup(k, now)
	if j == nil {
		return nil, false
	}
	o.cancel(j, now, nil, true)
	o.signal()
	return o.wireJob(j, now), true
}

// writeJSON writes v as the answer, as it is if it is encoded already,
// and returns the status it wrote.
func writeJSON(w http.ResponseWriter, v any) int {
	b, ok := v.(json.RawMessage)
	var err error
	if !ok {
		b, err = json.Marshal(v)
	}
	if err != nil {
		e := &apiError{status: http.StatusInternalServerError, reason: "internalError", message: "encoding the response: " + err.Error()}
		e.write(w)
		return e.status
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(b) // a client gone away is no concern of the simulation
	return http.StatusOK
}
