package web

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// fakeJob is a running job as the fake API lists it.
type fakeJob struct {
	events.Job
	Stale bool `json:"stale,omitempty"`
}

func (j *fakeJob) id() string { return j.Key.Project + "/" + j.Key.Location + "/" + j.Key.JobID }

// fakeAPI stands in for the running-jobs JSON API beside the page: it lists,
// filters, sorts and pages a fixed set of jobs, serves their detail and a
// summary, and streams the changes a test makes with remove and update. It
// records every list request so a test can see what the page asked for.
type fakeAPI struct {
	mu      sync.Mutex
	jobs    map[string]*fakeJob
	lists   []url.Values
	subs    map[chan string]url.Values // each stream's filters
	streams []http.Header              // the request headers of every stream
	seq     int
	drop    chan struct{} // closed to cut every open stream
	done    chan struct{}
	closer  sync.Once
}

func newFakeAPI(jobs []*fakeJob) *fakeAPI {
	f := &fakeAPI{jobs: map[string]*fakeJob{}, subs: map[chan string]url.Values{}, drop: make(chan struct{}), done: make(chan struct{})}
	for _, j := range jobs {
		f.jobs[j.id()] = j
	}
	return f
}

// handler serves the fake API under /api/v1/ and page everywhere else.
func (f *fakeAPI) handler(page http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/jobs", f.list)
	mux.HandleFunc("GET /api/v1/jobs/{project}/{location}/{job_id}", f.detail)
	mux.HandleFunc("GET /api/v1/summary", f.summary)
	mux.HandleFunc("GET /api/v1/stream", f.stream)
	mux.Handle("/", page)
	return mux
}

// close ends every open stream.
func (f *fakeAPI) close() { f.closer.Do(func() { close(f.done) }) }

// dropStreams cuts every open stream, as a restarting server or a proxy
// would; the browser reconnects.
func (f *fakeAPI) dropStreams() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.drop)
	f.drop = make(chan struct{})
}

// streamRequests returns the headers of every stream request so far.
func (f *fakeAPI) streamRequests() []http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.streams)
}

// listRequests returns the query of every list request so far.
func (f *fakeAPI) listRequests() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lists)
}

// remove takes a job out of the list, as its completion would, and tells
// the streams.
func (f *fakeAPI) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	if !ok {
		return
	}
	delete(f.jobs, id)
	key, _ := json.Marshal(map[string]events.JobKey{"key": j.Key})
	f.broadcast(j, "removed", string(key))
}

// update replaces a job (or adds one) and tells the streams.
func (f *fakeAPI) update(j *fakeJob) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kind := "changed"
	if _, ok := f.jobs[j.id()]; !ok {
		kind = "added"
	}
	f.jobs[j.id()] = j
	data, _ := json.Marshal(j)
	f.broadcast(j, kind, string(data))
}

// broadcast sends an event about j to the streams whose filters j matches.
func (f *fakeAPI) broadcast(j *fakeJob, event, data string) {
	f.seq++
	msg := fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", f.seq, event, data)
	for ch, q := range f.subs {
		if !matches(j, q) {
			continue
		}
		select {
		case ch <- msg:
		default: // a stuck client misses events, as a real one would be cut off
		}
	}
}

func (f *fakeAPI) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.lists = append(f.lists, q)
	var matched []*fakeJob
	for _, j := range f.jobs {
		if matches(j, q) {
			matched = append(matched, j)
		}
	}
	f.mu.Unlock()
	sortJobs(matched, q.Get("sort"))
	from, _ := strconv.Atoi(q.Get("cursor"))
	limit, err := strconv.Atoi(cmp.Or(q.Get("limit"), "100"))
	if err != nil || limit < 1 || limit > 1000 {
		problem(w, http.StatusBadRequest, "limit out of range")
		return
	}
	to := min(from+limit, len(matched))
	next := ""
	if to < len(matched) {
		next = strconv.Itoa(to)
	}
	writeJSON(w, map[string]any{"jobs": matched[min(from, to):to], "total": len(matched), "next_cursor": next})
}

func matches(j *fakeJob, q url.Values) bool {
	eq := func(param, v string) bool { return q.Get(param) == "" || strings.EqualFold(q.Get(param), v) }
	if !eq("project", j.Key.Project) || !eq("location", j.Key.Location) || !eq("user", j.Principal) ||
		!eq("state", string(j.State)) || !eq("type", j.JobType) || !eq("reservation", j.Reservation) {
		return false
	}
	for _, l := range q["label"] {
		k, v, _ := strings.Cut(l, "=")
		if j.Labels[k] != v {
			return false
		}
	}
	text := strings.ToLower(strings.Join([]string{j.Key.JobID, j.Principal, j.Query, j.Key.Project}, " "))
	return strings.Contains(text, strings.ToLower(q.Get("q")))
}

func sortJobs(jobs []*fakeJob, sort string) {
	desc := strings.HasPrefix(sort, "-")
	value := func(j *fakeJob) int64 {
		switch strings.TrimPrefix(sort, "-") {
		case "slot_ms":
			return deref(j.SlotMs)
		case "bytes":
			return deref(j.BytesProcessed)
		case "created":
			return j.CreateTime.UnixMilli()
		case "started":
			return j.StartTime.UnixMilli()
		}
		if j.StartTime.IsZero() {
			return -1 << 62
		}
		return -j.StartTime.UnixMilli() // running time
	}
	slices.SortStableFunc(jobs, func(a, b *fakeJob) int {
		c := cmp.Compare(value(a), value(b))
		if desc {
			c = -c
		}
		return cmp.Or(c, strings.Compare(a.id(), b.id()))
	})
}

func deref(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}

func (f *fakeAPI) detail(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("project") + "/" + r.PathValue("location") + "/" + r.PathValue("job_id")
	f.mu.Lock()
	j, ok := f.jobs[id]
	f.mu.Unlock()
	if !ok {
		problem(w, http.StatusNotFound, "no such job")
		return
	}
	writeJSON(w, map[string]any{"job": j, "events": timeline(j)})
}

// timeline makes up the events that would have produced j.
func timeline(j *fakeJob) []events.Event {
	ev := func(kind events.Kind, at time.Time, state events.State, format, method string) events.Event {
		return events.Event{ID: fmt.Sprintf("%s-%d", kind, at.UnixNano()), Kind: kind, Job: j.Key, Time: at, State: state,
			Source: events.Source{Format: format, Method: method}}
	}
	evs := []events.Event{ev(events.KindInserted, j.CreateTime, events.StatePending, "v2", "google.cloud.bigquery.v2.JobService.InsertJob")}
	if !j.StartTime.IsZero() {
		evs = append(evs, ev(events.KindStateChanged, j.StartTime, events.StateRunning, "api", "jobs.get"))
		p := ev(events.KindProgress, j.StartTime.Add(20*time.Second), events.StateRunning, "api", "jobs.get")
		p.SlotMs, p.Progress = j.SlotMs, j.Progress
		evs = append(evs, p)
	}
	return evs
}

func (f *fakeAPI) summary(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	counts := map[string]map[string]int{"project": {}, "reservation": {}, "user": {}, "location": {}}
	s := map[string]any{}
	running, pending, stale := 0, 0, 0
	var oldest, queued *fakeJob
	for _, j := range f.jobs {
		counts["project"][j.Key.Project]++
		counts["reservation"][j.Reservation]++
		counts["user"][j.Principal]++
		counts["location"][j.Key.Location]++
		switch {
		case j.Stale:
			stale++
		case j.State == events.StateRunning:
			running++
			if oldest == nil || j.StartTime.Before(oldest.StartTime) {
				oldest = j
			}
		default:
			pending++
			if queued == nil || j.CreateTime.Before(queued.CreateTime) {
				queued = j
			}
		}
	}
	for name, c := range counts {
		var groups []map[string]any
		for k, n := range c {
			groups = append(groups, map[string]any{"key": k, "jobs": n})
		}
		s["by_"+name] = groups
	}
	s["running"], s["pending"], s["stale"] = running, pending, stale
	s["oldest_running"], s["longest_queued"] = oldest, queued
	writeJSON(w, s)
}

func (f *fakeAPI) stream(w http.ResponseWriter, r *http.Request) {
	ch := make(chan string, 1<<14)
	f.mu.Lock()
	f.subs[ch] = r.URL.Query()
	f.streams = append(f.streams, r.Header.Clone())
	drop := f.drop
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	fl := w.(http.Flusher)
	fmt.Fprint(w, "retry: 200\n\n")
	fl.Flush()
	heartbeat := time.NewTicker(10 * time.Second)
	defer heartbeat.Stop()
	for {
		select {
		case msg := <-ch:
			fmt.Fprint(w, msg)
		case <-heartbeat.C:
			fmt.Fprint(w, "event: heartbeat\ndata: {}\n\n")
		case <-r.Context().Done():
			return
		case <-f.done:
			return
		case <-drop:
			return
		}
		fl.Flush()
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func problem(w http.ResponseWriter, status int, title string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": title, "status": status})
}

// Material for made-up jobs that look like an organization's.
var (
	fakeProjects = []string{"acme-analytics-prod", "acme-etl", "acme-ml-training", "acme-finance-bi", "acme-marketing", "sandbox-dana"}
	fakeLocation = []string{"US", "US", "EU", "europe-west4", "asia-northeast1"}
	fakeUsers    = []string{
		"alice@acme.example", "bob@acme.example", "dana@acme.example",
		"etl-runner@acme-etl.iam.gserviceaccount.com", "looker@acme-finance-bi.iam.gserviceaccount.com",
		"dbt-prod@acme-analytics-prod.iam.gserviceaccount.com",
	}
	fakeReservations = []string{"acme-admin:US.etl", "acme-admin:US.bi-interactive", "acme-admin:EU.default", ""}
	fakeQueries      = []struct{ statement, sql string }{
		{"SELECT", "SELECT customer_id, SUM(amount) AS revenue\nFROM `acme-analytics-prod.sales.orders`\nWHERE order_date >= DATE_SUB(CURRENT_DATE(), INTERVAL 30 DAY)\nGROUP BY customer_id\nORDER BY revenue DESC"},
		{"MERGE", "MERGE `acme-etl.core.customers` T\nUSING `acme-etl.staging.customers_delta` S\nON T.customer_id = S.customer_id\nWHEN MATCHED THEN UPDATE SET email = S.email, updated_at = S.updated_at\nWHEN NOT MATCHED THEN INSERT ROW"},
		{"CREATE_TABLE_AS_SELECT", "CREATE OR REPLACE TABLE `acme-ml-training.features.user_embeddings` AS\nSELECT user_id, ML.GENERATE_EMBEDDING(MODEL `acme-ml-training.models.text_embed`, text) AS embedding\nFROM `acme-ml-training.raw.reviews`"},
		{"INSERT", "INSERT INTO `acme-finance-bi.reporting.daily_kpis`\nSELECT DATE(ts) AS day, COUNT(DISTINCT session_id) AS sessions, SUM(revenue) AS revenue\nFROM `acme-analytics-prod.web.events` WHERE DATE(ts) = CURRENT_DATE() - 1 GROUP BY day"},
		{"SELECT", "-- Looker Query Context '{\"user_id\":42}'\nSELECT campaign, channel, COUNT(*) AS clicks FROM `acme-marketing.ads.clicks` WHERE _PARTITIONDATE BETWEEN '2024-01-01' AND '2024-03-31' GROUP BY 1, 2"},
		{"SELECT", "WITH sessions AS (SELECT user_id, TIMESTAMP_DIFF(MAX(ts), MIN(ts), SECOND) AS secs FROM `acme-analytics-prod.web.events` GROUP BY user_id, session_id)\nSELECT APPROX_QUANTILES(secs, 100)[OFFSET(50)] AS median FROM sessions"},
	}
	fakeLabels = []map[string]string{
		{"team": "growth", "env": "prod"},
		{"dag": "orders_daily", "task": "merge_customers", "env": "prod"},
		{"looker-context-user_id": "42"},
		nil,
		{"team": "ml", "cost-center": "cc-1042"},
	}
)

// seedJobs makes n running or queued jobs, the same ones for the same n.
func seedJobs(n int, now time.Time) []*fakeJob {
	r := rand.New(rand.NewPCG(7, uint64(n)))
	jobs := make([]*fakeJob, n)
	for i := range jobs {
		jobs[i] = seedJob(r, i, now)
	}
	return jobs
}

func seedJob(r *rand.Rand, i int, now time.Time) *fakeJob {
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	j := &fakeJob{}
	j.Key = events.JobKey{Project: pick(fakeProjects), Location: pick(fakeLocation), JobID: fakeJobID(r, i)}
	j.Principal = pick(fakeUsers)
	j.Reservation = pick(fakeReservations)
	j.Priority = "INTERACTIVE"
	if r.IntN(5) == 0 {
		j.Priority = "BATCH"
	}
	j.Labels = fakeLabels[r.IntN(len(fakeLabels))]
	j.CreateTime = now.Add(-time.Duration(r.Int64N(int64(3 * time.Hour))))
	j.JobType = events.JobTypeQuery
	switch r.IntN(12) {
	case 0:
		j.JobType = events.JobTypeLoad
	case 1:
		j.JobType = events.JobTypeExtract
	default:
		q := fakeQueries[r.IntN(len(fakeQueries))]
		j.StatementType, j.Query = q.statement, q.sql
	}
	j.State = events.StatePending
	if r.IntN(6) != 0 {
		j.State = events.StateRunning
		j.StartTime = j.CreateTime.Add(time.Duration(r.Int64N(int64(40 * time.Second))))
		j.SlotMs = events.Int64(r.Int64N(5e9))
		j.BytesProcessed = events.Int64(r.Int64N(5e12))
		done := r.Int64N(4000)
		j.Progress = events.Progress{CompletedUnits: events.Int64(done), PendingUnits: events.Int64(r.Int64N(4000)), ActiveUnits: events.Int64(r.Int64N(300))}
	}
	if i%97 == 3 {
		j.Stale = true
		j.CreateTime = now.Add(-8 * 24 * time.Hour)
		j.StartTime = j.CreateTime.Add(time.Second)
	}
	j.FirstSeen, j.LastSeen = j.CreateTime, now
	return j
}

func fakeJobID(r *rand.Rand, i int) string {
	switch i % 4 {
	case 0:
		return fmt.Sprintf("bquxjob_%08x_%011x", r.Uint32(), r.Uint64()>>20)
	case 1:
		return fmt.Sprintf("scheduled_query_%08x-0000-2%03x-%04x", r.Uint32(), r.IntN(4096), r.IntN(65536))
	case 2:
		return fmt.Sprintf("airflow_orders_daily_merge_%d_%04x", 20240000+i, r.IntN(65536))
	}
	return fmt.Sprintf("job_%016x", r.Uint64())
}
