package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/projections/access"
	"github.com/bqobserver/bqobserver/projections/running"
)

// org is a made-up organization served as the service serves it: its jobs'
// events are appended to an event log (bttest, or the emulator when
// BIGTABLE_EMULATOR_HOST is set), the running-jobs projection is rebuilt
// from that log, and the projection's real API is mounted beside the page.
// A test changes jobs the way the live feed does: it appends events to the
// log and applies them to the projection.
type org struct {
	t    testing.TB
	log  *events.Log
	proj *running.Projection
	srv  *httptest.Server
	rec  *recorder
	// caller uses the page and the API.
	caller access.Principal
	// seeded are the ids of the jobs the org started with, in the order
	// they were made.
	seeded []string

	ids   atomic.Int64 // numbers the events, for their ids
	mu    sync.Mutex
	clock time.Time // the time of the latest event
}

// newOrg serves the page and the API over a projection rebuilt from a log
// holding the events of n made-up jobs; everything stops when the test
// ends.
func newOrg(t testing.TB, n int) *org {
	t.Helper()
	return newOrgAs(t, n, access.Anonymous())
}

// newOrgAs is newOrg whose page and API are used by caller.
func newOrgAs(t testing.TB, n int, caller access.Principal) *org {
	t.Helper()
	bt := logtest.NewBigtable(t)
	l, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table})
	if err != nil {
		t.Fatal(err)
	}
	p, err := running.New(running.Config{History: running.HistoryConfig{BigQueryProject: "acme-observer"}}, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := &org{t: t, log: l, proj: p, caller: caller, clock: time.Now()}
	evs, ids := seedJobs(o, n, o.clock)
	o.seeded = ids
	o.append(evs)
	if err := p.Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	p.MarkLive()
	o.rec = &recorder{next: o.as(caller, p.Handler())}
	mux := http.NewServeMux()
	mux.Handle("/api/", o.rec)
	mux.Handle("/", Handler())
	o.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		p.Close() // ends the streams, which would hold the server open
		o.srv.CloseClientConnections()
		o.srv.Close()
	})
	return o
}

// as serves h to the caller p, as the authentication middleware does.
func (o *org) as(p access.Principal, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(access.WithPrincipal(r.Context(), p)))
	})
}

// URL is the page's address.
func (o *org) URL() string { return o.srv.URL + "/" }

func (o *org) append(evs []events.Event) {
	o.t.Helper()
	if len(evs) == 0 {
		return
	}
	if err := o.log.Append(o.t.Context(), evs); err != nil {
		o.t.Fatalf("appending %d events: %v", len(evs), err)
	}
}

// feed appends events to the log and applies them to the projection, as
// ingest and the live feed do.
func (o *org) feed(evs ...events.Event) {
	o.t.Helper()
	o.append(evs)
	o.apply(evs)
}

// apply applies events to the projection, as the live feed does once they
// are in the log.
func (o *org) apply(evs []events.Event) {
	o.t.Helper()
	if err := o.proj.Apply(o.t.Context(), evs...); err != nil {
		o.t.Fatalf("applying %d events: %v", len(evs), err)
	}
}

// now returns the time of a new event: the wall clock, but always at least
// a millisecond after the event before, so that a later change of the same
// job wins the fold.
func (o *org) now() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.clock = later(time.Now(), o.clock.Add(time.Millisecond))
	return o.clock
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// event makes the org's next event of a job: an observation through the
// API for progress, an audit entry for the rest.
func (o *org) event(kind events.Kind, key events.JobKey, at time.Time, state events.State, facts events.Facts) events.Event {
	source := events.Source{Format: "v2", Method: string(kind)}
	if kind == events.KindProgress {
		source = events.Source{Format: "api", Method: "jobs.get"}
	}
	return events.Event{
		ID: events.DerivedEventID("web-test", strconv.FormatInt(o.ids.Add(1), 10)), Kind: kind, Job: key,
		Time: at, State: state, Facts: facts, Source: source,
	}
}

// progress is an observation of a running job's slot-ms, made now.
func (o *org) progress(id string, slotMs int64) events.Event {
	return o.event(events.KindProgress, keyOf(id), o.now(), events.StateRunning, events.Facts{SlotMs: events.Int64(slotMs)})
}

// finish is a job's completion, now.
func (o *org) finish(id string) events.Event {
	at := o.now()
	return o.event(events.KindCompleted, keyOf(id), at, events.StateDone, events.Facts{EndTime: at})
}

// keyOf parses a row id, project/location/job_id.
func keyOf(id string) events.JobKey {
	p := strings.SplitN(id, "/", 3)
	return events.JobKey{Project: p[0], Location: p[1], JobID: p[2]}
}

func idOf(k events.JobKey) string { return k.Project + "/" + k.Location + "/" + k.JobID }

// listed asks the API, not through the recorder, for the ids of the jobs
// matching q, in its order.
func (o *org) listed(q url.Values) []string {
	o.t.Helper()
	q = maps.Clone(q)
	q.Set("limit", "1000")
	ids, total, _ := o.page("/api/v1/jobs", q)
	if total != len(ids) {
		o.t.Fatalf("listing %s: %d jobs of %d on one page", q.Encode(), len(ids), total)
	}
	return ids
}

// page asks the API, not through the recorder, for one page of a list:
// the ids of its jobs in order, the total and the next cursor.
func (o *org) page(path string, q url.Values) (ids []string, total int, next string) {
	o.t.Helper()
	w := httptest.NewRecorder()
	o.as(o.caller, o.proj.Handler()).ServeHTTP(w, httptest.NewRequest(http.MethodGet, path+"?"+q.Encode(), nil))
	var page struct {
		Jobs []struct {
			Key events.JobKey `json:"key"`
		} `json:"jobs"`
		Total int    `json:"total"`
		Next  string `json:"next_cursor"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || w.Code != http.StatusOK {
		o.t.Fatalf("GET %s?%s: %d %v\n%s", path, q.Encode(), w.Code, err, w.Body)
	}
	ids = make([]string, len(page.Jobs))
	for i, j := range page.Jobs {
		ids[i] = idOf(j.Key)
	}
	return ids, page.Total, page.Next
}

// recorder passes requests to the API and notes what the page asked for:
// the query of every list request and, for every stream, its request
// headers and the id of the last event the API wrote on it.
type recorder struct {
	next      http.Handler
	mu        sync.Mutex
	lists     []url.Values
	histories []url.Values
	streams   []streamRecord
}

type streamRecord struct {
	Header http.Header
	LastID string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	switch r.URL.Path {
	case "/api/v1/jobs":
		rec.lists = append(rec.lists, r.URL.Query())
	case "/api/v1/history":
		rec.histories = append(rec.histories, r.URL.Query())
	case "/api/v1/stream":
		rec.streams = append(rec.streams, streamRecord{Header: r.Header.Clone()})
		w = &idWriter{ResponseWriter: w, rec: rec, n: len(rec.streams) - 1}
	}
	rec.mu.Unlock()
	rec.next.ServeHTTP(w, r)
}

// listQueries returns the query of every list request so far.
func (rec *recorder) listQueries() []url.Values {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.lists)
}

// historyQueries returns the query of every history request so far.
func (rec *recorder) historyQueries() []url.Values {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.histories)
}

// streamRequests returns every stream request so far.
func (rec *recorder) streamRequests() []streamRecord {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.streams)
}

// idWriter notes the id lines of a Server-Sent Events stream as they are
// written. Unwrap lets http.ResponseController reach the connection.
type idWriter struct {
	http.ResponseWriter
	rec     *recorder
	n       int
	partial []byte // the written part of an unfinished line
}

func (w *idWriter) Write(p []byte) (int, error) {
	data := append(w.partial, p...)
	last := ""
	for {
		line, rest, ok := bytes.Cut(data, []byte("\n"))
		if !ok {
			break
		}
		if id, ok := bytes.CutPrefix(line, []byte("id:")); ok {
			last = string(bytes.TrimPrefix(id, []byte(" ")))
		}
		data = rest
	}
	w.partial = bytes.Clone(data)
	if last != "" {
		w.rec.mu.Lock()
		w.rec.streams[w.n].LastID = last
		w.rec.mu.Unlock()
	}
	return w.ResponseWriter.Write(p)
}

func (w *idWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Material for made-up jobs that look like an organization's.
var (
	seedProjects = []string{"acme-analytics-prod", "acme-etl", "acme-ml-training", "acme-finance-bi", "acme-marketing", "sandbox-dana"}
	seedLocation = []string{"US", "US", "EU", "europe-west4", "asia-northeast1"}
	seedUsers    = []string{
		"alice@acme.example", "bob@acme.example", "dana@acme.example",
		"etl-runner@acme-etl.iam.gserviceaccount.com", "looker@acme-finance-bi.iam.gserviceaccount.com",
		"dbt-prod@acme-analytics-prod.iam.gserviceaccount.com",
	}
	seedReservations = []string{"acme-admin:US.etl", "acme-admin:US.bi-interactive", "acme-admin:EU.default", ""}
	seedQueries      = []struct{ statement, sql string }{
		{"SELECT", "SELECT customer_id, SUM(amount) AS revenue\nFROM `acme-analytics-prod.sales.orders`\nWHERE order_date >= DATE_SUB(CURRENT_DATE(), INTERVAL 30 DAY)\nGROUP BY customer_id\nORDER BY revenue DESC"},
		{"MERGE", "MERGE `acme-etl.core.customers` T\nUSING `acme-etl.staging.customers_delta` S\nON T.customer_id = S.customer_id\nWHEN MATCHED THEN UPDATE SET email = S.email, updated_at = S.updated_at\nWHEN NOT MATCHED THEN INSERT ROW"},
		{"CREATE_TABLE_AS_SELECT", "CREATE OR REPLACE TABLE `acme-ml-training.features.user_embeddings` AS\nSELECT user_id, ML.GENERATE_EMBEDDING(MODEL `acme-ml-training.models.text_embed`, text) AS embedding\nFROM `acme-ml-training.raw.reviews`"},
		{"INSERT", "INSERT INTO `acme-finance-bi.reporting.daily_kpis`\nSELECT DATE(ts) AS day, COUNT(DISTINCT session_id) AS sessions, SUM(revenue) AS revenue\nFROM `acme-analytics-prod.web.events` WHERE DATE(ts) = CURRENT_DATE() - 1 GROUP BY day"},
		{"SELECT", "-- Looker Query Context '{\"user_id\":42}'\nSELECT campaign, channel, COUNT(*) AS clicks FROM `acme-marketing.ads.clicks` WHERE _PARTITIONDATE BETWEEN '2024-01-01' AND '2024-03-31' GROUP BY 1, 2"},
		{"SELECT", "WITH sessions AS (SELECT user_id, TIMESTAMP_DIFF(MAX(ts), MIN(ts), SECOND) AS secs FROM `acme-analytics-prod.web.events` GROUP BY user_id, session_id)\nSELECT APPROX_QUANTILES(secs, 100)[OFFSET(50)] AS median FROM sessions"},
	}
	seedLabels = []map[string]string{
		{"team": "growth", "env": "prod"},
		{"dag": "orders_daily", "task": "merge_customers", "env": "prod"},
		{"looker-context-user_id": "42"},
		nil,
		{"team": "ml", "cost-center": "cc-1042"},
	}
)

// seedJobs returns the events of n running or queued jobs, the same ones
// for the same n, and the jobs' ids. About one job in a hundred was last
// heard of eight days ago, so the projection flags it stale.
func seedJobs(o *org, n int, now time.Time) ([]events.Event, []string) {
	r := rand.New(rand.NewPCG(7, uint64(n)))
	var evs []events.Event
	ids := make([]string, n)
	for i := range ids {
		job := seedJob(o, r, i, now)
		ids[i] = idOf(job[0].Job)
		evs = append(evs, job...)
	}
	return evs, ids
}

// seedJob returns the events of one job: its insertion and, when it runs,
// an observation of its progress.
func seedJob(o *org, r *rand.Rand, i int, now time.Time) []events.Event {
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	key := events.JobKey{Project: pick(seedProjects), Location: pick(seedLocation), JobID: seedJobID(r, i)}
	f := events.Facts{Principal: pick(seedUsers), Reservation: pick(seedReservations), Priority: "INTERACTIVE", JobType: events.JobTypeQuery}
	if r.IntN(5) == 0 {
		f.Priority = "BATCH"
	}
	f.Labels = seedLabels[r.IntN(len(seedLabels))]
	f.CreateTime = now.Add(-time.Duration(r.Int64N(int64(3 * time.Hour))))
	switch r.IntN(12) {
	case 0:
		f.JobType = events.JobTypeLoad
	case 1:
		f.JobType = events.JobTypeExtract
	default:
		q := seedQueries[r.IntN(len(seedQueries))]
		f.StatementType, f.Query = q.statement, q.sql
	}
	running := r.IntN(6) != 0
	if i%97 == 3 {
		f.CreateTime = now.Add(-8 * 24 * time.Hour)
	}
	if !running {
		return []events.Event{o.event(events.KindInserted, key, f.CreateTime, events.StatePending, f)}
	}
	f.StartTime = f.CreateTime.Add(time.Duration(r.Int64N(int64(40 * time.Second))))
	inserted := o.event(events.KindInserted, key, f.CreateTime, events.StateRunning, f)
	seen := now
	if i%97 == 3 {
		seen = f.StartTime.Add(20 * time.Second)
	}
	progress := o.event(events.KindProgress, key, seen, events.StateRunning, events.Facts{
		SlotMs: events.Int64(r.Int64N(5e9)), BytesProcessed: events.Int64(r.Int64N(5e12)),
		Progress: events.Progress{CompletedUnits: events.Int64(r.Int64N(4000)), PendingUnits: events.Int64(r.Int64N(4000)), ActiveUnits: events.Int64(r.Int64N(300))},
	})
	return []events.Event{inserted, progress}
}

func seedJobID(r *rand.Rand, i int) string {
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
