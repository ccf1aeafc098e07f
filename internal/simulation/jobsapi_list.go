package simulation

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// listQuery is a jobs.list request, with the query parameters of
// https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/list.
type listQuery struct {
	allUsers bool
	// states is the stateFilter (repeatable); nil lists every state.
	states map[events.State]bool
	// minMs and maxMs bound the creation time, in milliseconds since the
	// epoch, both inclusive; hasMin and hasMax say whether they are set.
	minMs, maxMs   int64
	hasMin, hasMax bool
	maxResults     int
	// after is where the page starts: below this sequence number (0 for
	// the first page).
	after   uint64
	minimal bool
	parent  string
}

// Page sizes of jobs.list.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

// permission is what a caller needs for q: bigquery.jobs.listAll to list
// every user's jobs, bigquery.jobs.list for its own.
func (q *listQuery) permission() string {
	if q.allUsers {
		return "bigquery.jobs.listAll"
	}
	return "bigquery.jobs.list"
}

func parseListQuery(r *http.Request) (listQuery, error) {
	v := r.URL.Query()
	q := listQuery{maxResults: defaultPageSize, parent: v.Get("parentJobId")}
	var errs []error
	q.allUsers, errs = parseBool(v.Get("allUsers"), "allUsers", errs)
	q.states, errs = parseStates(v["stateFilter"], errs)
	q.minMs, q.hasMin, errs = parseMillis(v.Get("minCreationTime"), "minCreationTime", errs)
	q.maxMs, q.hasMax, errs = parseMillis(v.Get("maxCreationTime"), "maxCreationTime", errs)
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
	if s := v.Get("pageToken"); s != "" {
		var ok bool
		if q.after, ok = parseToken(s); !ok {
			errs = append(errs, fmt.Errorf("Invalid page token: %q", s))
		}
	}
	return q, errors.Join(errs...)
}

func parseStates(values []string, errs []error) (map[events.State]bool, []error) {
	var states map[events.State]bool
	for _, s := range values {
		st := events.State(strings.ToUpper(s))
		if st != events.StatePending && st != events.StateRunning && st != events.StateDone {
			errs = append(errs, fmt.Errorf("Invalid value for stateFilter: %q", s))
			continue
		}
		if states == nil {
			states = map[events.State]bool{}
		}
		states[st] = true
	}
	return states, errs
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

func parseMillis(s, name string, errs []error) (int64, bool, []error) {
	if s == "" {
		return 0, false, errs
	}
	ms, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, false, append(errs, fmt.Errorf("Invalid value for %s: %q", name, s))
	}
	return int64(ms), true, errs
}

// pageToken marks where a page ended: the sequence number of its last job.
// Jobs are numbered in creation order and never renumbered, so the next
// page goes on below it whatever was created, finished or forgotten in
// between: a job that matches the filter throughout is listed exactly once.
func pageToken(j *job) string {
	return base64.RawURLEncoding.EncodeToString([]byte("jobs:" + strconv.FormatUint(j.seq, 10)))
}

func parseToken(s string) (uint64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(string(b), "jobs:")
	n, err := strconv.ParseUint(rest, 10, 64)
	return n, ok && err == nil && n > 0
}

// jobList is the JobList resource with its jobs encoded already, so that
// an open job is encoded once per refresh of its statistics, not once per
// call.
type jobList struct {
	etag, nextPageToken string
	jobs                []json.RawMessage
}

// encode writes the list as the JobList JSON object, joining its jobs'
// encodings as they are.
func (l *jobList) encode() json.RawMessage {
	n := 128 + len(l.etag) + len(l.nextPageToken)
	for _, j := range l.jobs {
		n += len(j) + 1
	}
	b := append(make([]byte, 0, n), `{"kind":"bigquery#jobList","etag":`...)
	b = strconv.AppendQuote(b, l.etag) // base64: nothing to escape
	if len(l.jobs) > 0 {
		b = append(b, `,"jobs":[`...)
		for i, j := range l.jobs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, j...)
		}
		b = append(b, ']')
	}
	if l.nextPageToken != "" {
		b = append(b, `,"nextPageToken":`...)
		b = strconv.AppendQuote(b, l.nextPageToken) // base64url: nothing to escape
	}
	return append(b, '}')
}

// listJobs answers jobs.list: one page of the project's jobs that q
// selects, newest first ("sorted in reverse chronological order, by job
// creation time").
func (o *Org) listJobs(projectID string, q listQuery) (json.RawMessage, *apiError) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.byID[projectID]
	if p == nil {
		return nil, notFound("Not found: Project " + projectID)
	}
	now := o.syncNow()
	src := p.jobs
	if q.states != nil && !q.states[events.StateDone] {
		src = p.open // the same jobs in the same order, less the finished ones
	}
	list := &jobList{}
	var last *job
	for i := q.end(src) - 1; i >= 0; i-- {
		j := src[i]
		if q.hasMin && ms(j.created) < q.minMs {
			break
		}
		if !o.listed(j, q, now) {
			continue
		}
		if len(list.jobs) == q.maxResults {
			list.nextPageToken = pageToken(last)
			break
		}
		data, err := o.listedJSON(j, now, q.minimal)
		if err != nil {
			return nil, &apiError{status: http.StatusInternalServerError, reason: "internalError", message: "encoding job " + j.key.String() + ": " + err.Error()}
		}
		list.jobs = append(list.jobs, data)
		last = j
	}
	list.etag = etag(list.nextPageToken + strconv.Itoa(len(list.jobs)) + now.String())
	return list.encode(), nil
}

// end is the index in src (in creation order) below which q's page
// starts: below its page token, and at or before its maximum creation
// time.
func (q *listQuery) end(src []*job) int {
	n := len(src)
	if q.after > 0 {
		n = sort.Search(n, func(i int) bool { return src[i].seq >= q.after })
	}
	if q.hasMax {
		n = sort.Search(n, func(i int) bool { return ms(src[i].created) > q.maxMs })
	}
	return n
}

// listed reports whether jobs.list shows j for q: a child job only when
// its parent is asked for ("If set, retrieves only jobs whose parent is
// this job. Otherwise, retrieves only jobs which have no parent"), every
// user's only with allUsers.
func (o *Org) listed(j *job, q listQuery, now time.Time) bool {
	switch {
	case q.parent != "" && (j.parent == nil || j.parent.key.JobID != q.parent):
		return false
	case q.parent == "" && j.parent != nil:
		return false
	case !q.allUsers && j.principal.email != o.cfg.Operator:
		return false
	case q.states != nil && !q.states[j.state]:
		return false
	}
	return !o.expired(j, now)
}
