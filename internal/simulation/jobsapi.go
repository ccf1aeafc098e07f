package simulation

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
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
// Answers reflect the simulation at the current simulated time: a running
// job's statistics, query plan and timeline grow as it runs and end equal
// to what its completion entries report. A cancel is logged as the
// operator's jobs.cancel call and stops the job shortly after, with
// BigQuery's cancellation error. Requests are not authenticated; Deny
// switches on the 403 a caller without permission gets.
type JobsAPI struct {
	org *Org
	mux *http.ServeMux

	mu     sync.Mutex
	calls  map[Call]int
	denied map[string]bool
}

// Call identifies the calls of one API method on one project.
type Call struct {
	// Method is jobs.list, jobs.get or jobs.cancel.
	Method  string
	Project string
}

// API methods, as Call.Method names them.
const (
	MethodList   = "jobs.list"
	MethodGet    = "jobs.get"
	MethodCancel = "jobs.cancel"
)

// JobsAPI returns the organization's jobs API.
func (o *Org) JobsAPI() *JobsAPI { return o.api }

func newJobsAPI(o *Org) *JobsAPI {
	a := &JobsAPI{org: o, mux: http.NewServeMux(), calls: map[Call]int{}, denied: map[string]bool{}}
	for _, prefix := range []string{"/bigquery/v2", ""} {
		a.mux.HandleFunc("GET "+prefix+"/projects/{project}/jobs", a.list)
		a.mux.HandleFunc("GET "+prefix+"/projects/{project}/jobs/{job}", a.get)
		a.mux.HandleFunc("POST "+prefix+"/projects/{project}/jobs/{job}/cancel", a.cancel)
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "notFound", "Not found: "+r.Method+" "+r.URL.Path)
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

// Deny switches the permission denial of every call on project on or off.
func (a *JobsAPI) Deny(project string, denied bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.denied[project] = denied
}

// admit counts the call and reports whether the caller may make it.
func (a *JobsAPI) admit(method, project string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls[Call{method, project}]++
	return !a.denied[project]
}

func (a *JobsAPI) list(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("project")
	q, err := parseListQuery(r)
	if !a.admit(MethodList, p) {
		perm := "bigquery.jobs.list"
		if q.allUsers {
			perm = "bigquery.jobs.listAll"
		}
		writeError(w, http.StatusForbidden, "accessDenied", "Access Denied: Project "+p+": User does not have "+perm+" permission in project "+p+".")
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	list, ok := a.org.listJobs(p, q)
	if !ok {
		writeError(w, http.StatusNotFound, "notFound", "Not found: Project "+p)
		return
	}
	writeJSON(w, list)
}

func (a *JobsAPI) get(w http.ResponseWriter, r *http.Request) {
	if job, ok := a.jobCall(w, r, MethodGet, "bigquery.jobs.get", a.org.getJob); ok {
		writeJSON(w, job)
	}
}

func (a *JobsAPI) cancel(w http.ResponseWriter, r *http.Request) {
	if job, ok := a.jobCall(w, r, MethodCancel, "bigquery.jobs.update", a.org.cancelJob); ok {
		writeJSON(w, &bq.JobCancelResponse{Kind: "bigquery#jobCancelResponse", Job: job})
	}
}

// jobCall serves the part that jobs.get and jobs.cancel share: it counts the
// call, answers 403 (naming perm) for a denied project and 404 for an
// unknown job, and otherwise returns what do gives for the job.
func (a *JobsAPI) jobCall(w http.ResponseWriter, r *http.Request, method, perm string,
	do func(project, id, location string) (*bq.Job, bool)) (*bq.Job, bool) {
	p, id, loc := r.PathValue("project"), r.PathValue("job"), r.URL.Query().Get("location")
	name := jobPath(p, loc, id)
	if !a.admit(method, p) {
		writeError(w, http.StatusForbidden, "accessDenied", "Access Denied: Job "+name+": User does not have "+perm+" permission for job "+name+".")
		return nil, false
	}
	job, ok := do(p, id, loc)
	if !ok {
		writeError(w, http.StatusNotFound, "notFound", "Not found: Job "+name)
	}
	return job, ok
}

// jobPath names a job as BigQuery's messages do: project:location.id.
func jobPath(project, location, id string) string {
	if location == "" {
		return project + ":" + id
	}
	return project + ":" + location + "." + id
}

// listQuery is a jobs.list request.
type listQuery struct {
	allUsers   bool
	states     map[events.State]bool
	minCreated time.Time
	maxCreated time.Time
	maxResults int
	token      string
	minimal    bool
	parent     string
}

// Page sizes of jobs.list.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

func parseListQuery(r *http.Request) (listQuery, error) {
	v := r.URL.Query()
	q := listQuery{maxResults: defaultPageSize, token: v.Get("pageToken"), parent: v.Get("parentJobId")}
	var errs []error
	q.allUsers, errs = parseBool(v.Get("allUsers"), "allUsers", errs)
	for _, s := range v["stateFilter"] {
		st := events.State(strings.ToUpper(s))
		if st != events.StatePending && st != events.StateRunning && st != events.StateDone {
			errs = append(errs, fmt.Errorf("Invalid value for stateFilter: %q", s))
			continue
		}
		if q.states == nil {
			q.states = map[events.State]bool{}
		}
		q.states[st] = true
	}
	q.minCreated, errs = parseMillis(v.Get("minCreationTime"), "minCreationTime", errs)
	q.maxCreated, errs = parseMillis(v.Get("maxCreationTime"), "maxCreationTime", errs)
	if s := v.Get("maxResults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("Invalid value for maxResults: %q", s))
		} else if n > 0 {
			q.maxResults = min(n, maxPageSize)
		}
	}
	switch p := v.Get("projection"); p {
	case "", "full", "FULL":
	case "minimal", "MINIMAL":
		q.minimal = true
	default:
		errs = append(errs, fmt.Errorf("Invalid value for projection: %q", p))
	}
	return q, errors.Join(errs...)
}

func parseBool(s, name string, errs []error) (bool, []error) {
	if s == "" {
		return false, errs
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		errs = append(errs, fmt.Errorf("Invalid value for %s: %q", name, s))
	}
	return b, errs
}

func parseMillis(s, name string, errs []error) (time.Time, []error) {
	if s == "" {
		return time.Time{}, errs
	}
	ms, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return time.Time{}, append(errs, fmt.Errorf("Invalid value for %s: %q", name, s))
	}
	return time.UnixMilli(int64(ms)), errs
}

// pageToken marks where a page ended: the last job's creation time and id.
func pageToken(j *job) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(j.created.UnixNano(), 10) + ":" + j.key.Location + "." + j.key.JobID))
}

func parseToken(s string) (time.Time, string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", false
	}
	ns, id, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(ns, 10, 64)
	return time.Unix(0, n), id, ok && err == nil
}

// listJobs answers jobs.list: the project's jobs, newest first.
func (o *Org) listJobs(projectID string, q listQuery) (*bq.JobList, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.project(projectID)
	if p == nil {
		return nil, false
	}
	now := o.syncNow()
	list := &bq.JobList{Kind: "bigquery#jobList"}
	after, afterID, paged := parseToken(q.token)
	passed := !paged
	var last *job
	for i := len(p.jobs) - 1; i >= 0; i-- {
		j := p.jobs[i]
		if !passed {
			if j.created.Before(after) {
				passed = true
			} else {
				passed = j.created.Equal(after) && j.key.Location+"."+j.key.JobID == afterID
				continue
			}
		}
		if !o.listed(j, q) {
			continue
		}
		if len(list.Jobs) == q.maxResults {
			list.NextPageToken = pageToken(last)
			break
		}
		list.Jobs = append(list.Jobs, o.listedJob(j, now, q.minimal))
		last = j
	}
	list.Etag = etag(list.NextPageToken + strconv.Itoa(len(list.Jobs)) + now.String())
	return list, true
}

// listed reports whether jobs.list shows j for q.
func (o *Org) listed(j *job, q listQuery) bool {
	switch {
	case q.parent != "" && (j.parent == nil || j.parent.key.JobID != q.parent):
		return false
	case q.parent == "" && j.parent != nil:
		return false
	case !q.allUsers && j.principal.email != o.cfg.Operator:
		return false
	case q.states != nil && !q.states[j.state]:
		return false
	case !q.minCreated.IsZero() && j.created.Before(q.minCreated):
		return false
	case !q.maxCreated.IsZero() && j.created.After(q.maxCreated):
		return false
	}
	return true
}

// lookup finds a job by project, id and location. Without a location it
// finds jobs in the US and EU multi-regions only, as BigQuery does.
func (o *Org) lookup(projectID, id, location string) *job {
	if location != "" {
		return o.jobs[events.JobKey{Project: projectID, Location: location, JobID: id}]
	}
	for _, loc := range []string{"US", "EU"} {
		if j := o.jobs[events.JobKey{Project: projectID, Location: loc, JobID: id}]; j != nil {
			return j
		}
	}
	return nil
}

// getJob answers jobs.get.
func (o *Org) getJob(projectID, id, location string) (*bq.Job, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.syncNow()
	j := o.lookup(projectID, id, location)
	if j == nil {
		return nil, false
	}
	return o.wireJob(j, now, true), true
}

// cancelJob answers jobs.cancel: it logs the call and stops the job
// shortly after. The job it returns is as of the call, so usually still
// running, as BigQuery's answer is.
func (o *Org) cancelJob(projectID, id, location string) (*bq.Job, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.syncNow()
	j := o.lookup(projectID, id, location)
	if j == nil {
		return nil, false
	}
	o.cancel(j, now, nil, true)
	o.signal()
	return o.wireJob(j, now, true), true
}

// errorBody is the REST API's error shape.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    int         `json:"code"`
	Message string      `json:"message"`
	Errors  []errorItem `json:"errors"`
	Status  string      `json:"status"`
}

type errorItem struct {
	Message string `json:"message"`
	Domain  string `json:"domain"`
	Reason  string `json:"reason"`
}

var httpStatusNames = map[int]string{
	http.StatusBadRequest: "INVALID_ARGUMENT", http.StatusForbidden: "PERMISSION_DENIED", http.StatusNotFound: "NOT_FOUND",
}

func writeError(w http.ResponseWriter, code int, reason, message string) {
	body := errorBody{Error: errorDetail{Code: code, Message: message, Status: httpStatusNames[code],
		Errors: []errorItem{{Message: message, Domain: "global", Reason: reason}}}}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body) // a client gone away is no concern of the simulation
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internalError", "encoding the response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(b) // a client gone away is no concern of the simulation
}
