package running

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/fakeclock"
	"github.com/bqobserver/bqobserver/internal/testutil/golden"
	"github.com/bqobserver/bqobserver/projections/access"
)

// historyScenario is a log holding jobs that finished before, in and after
// the hour before t0+2h (the clock), in every way the history must tell
// apart, and jobs still running. Nothing is fed to the projection: the
// history reads the log alone.
func historyScenario(t *testing.T, cfg Config) (*Projection, *fakeclock.Clock) {
	t.Helper()
	l := newLog(t)
	if err := l.Append(t.Context(), historyEvents()); err != nil {
		t.Fatal(err)
	}
	return newProjection(t, l, t0.Add(2*time.Hour), cfg)
}

func historyEvents() []events.Event {
	at := func(m time.Duration) time.Time { return t0.Add(m * time.Minute) }
	var evs []events.Event

	merge := jobStory("acme-etl", "US", "merge_customers")
	evs = append(evs,
		merge.inserted(at(70), events.StateRunning, events.Facts{Principal: "etl@acme-etl.iam.gserviceaccount.com",
			JobType: events.JobTypeQuery, StatementType: "MERGE", Priority: "BATCH", Reservation: "admin:US.etl",
			Query:  "MERGE `acme-etl.core.customers` T USING `acme-etl.staging.delta` S ON T.id = S.id WHEN MATCHED THEN UPDATE SET email = S.email",
			Labels: map[string]string{"dag": "orders_daily", "env": "prod"}, ReferencedTables: []string{"acme-etl.staging.delta"},
			DestinationTable: "acme-etl.core.customers"}),
		merge.progress(at(75), 1_800_000, 4<<30),
		withFacts(merge.completed(at(80)), events.Facts{SlotMs: events.Int64(3_600_000), BytesProcessed: events.Int64(5 << 30), BytesBilled: events.Int64(5 << 30)}))

	looker := jobStory("acme-bi", "EU", "looker_77")
	failed := looker.completed(at(95))
	failed.Error = &events.JobError{Code: "invalidQuery", Message: "Unrecognized name: campain at [1:8]"}
	evs = append(evs,
		looker.inserted(at(94), events.StateRunning, events.Facts{Principal: "ann@acme.example", JobType: events.JobTypeQuery,
			StatementType: "SELECT", Priority: "INTERACTIVE", Query: "SELECT campain FROM `acme-bi.ads.clicks`"}),
		failed)

	// Its DONE entry is timed after the range (and after the clock), its
	// end inside: found through the lateness margin.
	late := jobStory("acme-bi", "US", "export_late")
	evs = append(evs,
		late.inserted(at(100), events.StateRunning, events.Facts{Principal: "bob@acme.example", JobType: events.JobTypeExtract,
			SourceTables: []string{"acme-bi.raw.events"}, DestinationURIs: []string{"gs://acme/export/*.avro"}}),
		withFacts(late.event(events.KindCompleted, at(125), events.StateDone, events.Facts{}), events.Facts{EndTime: at(115)}))

	// Closed by reconciliation with no end time known: finished at its
	// DONE event.
	lost := jobStory("acme-etl", "US", "load_lost_completion")
	evs = append(evs,
		lost.inserted(at(65), events.StateRunning, events.Facts{Principal: "etl@acme-etl.iam.gserviceaccount.com",
			JobType: events.JobTypeLoad, DestinationTable: "acme-etl.raw.events", SourceURIs: []string{"gs://acme/raw/*.json"}}),
		lost.event(events.KindReconciled, at(110), events.StateDone, events.Facts{}))

	// Ended a second before the range; its completion entry is inside.
	edge := jobStory("acme-etl", "US", "ended_before_from")
	evs = append(evs,
		edge.inserted(at(50), events.StateRunning, events.Facts{Principal: "ann@acme.example", JobType: events.JobTypeCopy}),
		withFacts(edge.event(events.KindCompleted, at(60).Add(time.Second), events.StateDone, events.Facts{}), events.Facts{EndTime: at(60).Add(-time.Second)}))

	early := jobStory("acme-bi", "US", "finished_early")
	evs = append(evs,
		early.inserted(at(20), events.StateRunning, events.Facts{Principal: "ann@acme.example", JobType: events.JobTypeQuery, StatementType: "SELECT",
			Query: "SELECT 1"}),
		early.completed(at(30)))

	running := jobStory("acme-etl", "EU", "still_running")
	evs = append(evs,
		running.inserted(at(90), events.StateRunning, events.Facts{Principal: "etl@acme-etl.iam.gserviceaccount.com", JobType: events.JobTypeQuery,
			StatementType: "SELECT", Query: "SELECT * FROM `acme-etl.core.customers`"}),
		running.progress(at(118), 60_000, 1<<20))
	return evs
}

func withFacts(e events.Event, f events.Facts) events.Event {
	e.Facts = f
	return e
}

// sqlStamps are the timestamp literals of the history's SQL.
var sqlStamps = regexp.MustCompile(`TIMESTAMP '([^']+) UTC'`)

// goldenHistory compares a history answer with its golden file, its SQL
// replaced by "<sql>" (TestHistorySQL holds it to golden files of its own).
func goldenHistory(t *testing.T, name string, w *http.Response, body []byte) {
	t.Helper()
	var decoded map[string]any
	if err := json.Unmarshal(body, &decoded); err != nil {
		t.Fatalf("%s: body is not JSON: %v\n%s", name, err, body)
	}
	if _, ok := decoded["bigquery_sql"]; ok {
		decoded["bigquery_sql"] = "<sql>"
	}
	b, err := json.Marshal(decoded)
	if err != nil {
		t.Fatal(err)
	}
	goldenResponse(t, name, w, b)
}

// observer is a configuration naming the BigQuery project of the history.
var observer = Config{History: HistoryConfig{BigQueryProject: "acme-observer"}}

func TestHistoryGolden(t *testing.T) {
	p, _ := historyScenario(t, observer)
	at := func(m time.Duration) string { return url.QueryEscape(stamp(t0.Add(m * time.Minute))) }
	tests := []struct{ name, path string }{
		{"history", "/api/v1/history"},
		{"history-range", "/api/v1/history?from=" + at(0) + "&to=" + at(180) + "&sort=created"},
		{"history-filtered", "/api/v1/history?project=ACME-ETL&state=succeeded&label=env=prod&q=customers&min_running=5m&sort=-slot_ms"},
		{"history-failed", "/api/v1/history?state=failed&type=query"},
		{"history-running-sort", "/api/v1/history?sort=-running&limit=2"},
		{"history-bad", "/api/v1/history?from=yesterday&to=" + at(0) + "&state=running&sort=size&limit=0&colour=red"},
		{"history-reversed", "/api/v1/history?from=" + at(60) + "&to=" + at(30)},
		{"history-too-long", "/api/v1/history?from=" + at(-24*60) + "&to=" + at(60)},
		{"history-from-after-now", "/api/v1/history?from=" + at(180)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := get(t, asAdmin(p.Handler()), tt.path)
			goldenHistory(t, tt.name, w.Result(), w.Body.Bytes())
		})
	}
}

// historyPage is the part of a history answer the tests read.
type historyPage struct {
	Jobs []struct {
		Key events.JobKey `json:"key"`
	} `json:"jobs"`
	Total      int    `json:"total"`
	NextCursor string `json:"next_cursor"`
	From       string `json:"from"`
	To         string `json:"to"`
}

func (pg historyPage) ids() []string {
	var ids []string
	for _, j := range pg.Jobs {
		ids = append(ids, idOf(&j.Key))
	}
	return ids
}

func getHistory(t *testing.T, h http.Handler, query string) historyPage {
	t.Helper()
	w := get(t, h, "/api/v1/history?"+query)
	var pg historyPage
	if w.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/history?%s = %d\n%s", query, w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &pg); err != nil {
		t.Fatal(err)
	}
	return pg
}

// TestHistorySecondPage follows a cursor alone, after the clock moved: the
// page reads the range of the first, not the hour before the new now.
func TestHistorySecondPage(t *testing.T) {
	p, c := historyScenario(t, Config{})
	first := getHistory(t, asAdmin(p.Handler()), "sort=created&limit=2")
	c.Advance(30 * time.Minute)
	w := get(t, asAdmin(p.Handler()), "/api/v1/history?sort=created&limit=2&cursor="+url.QueryEscape(first.NextCursor))
	goldenHistory(t, "history-second-page", w.Result(), w.Body.Bytes())
}

// TestHistoryCursorMismatch refuses a cursor with another range, another
// sort or of the other list.
func TestHistoryCursorMismatch(t *testing.T) {
	p, _ := historyScenario(t, Config{})
	h := asAdmin(p.Handler())
	first := getHistory(t, h, "sort=created&limit=1")
	running := cursor{order: runningKind.order, pos: position{key: &events.JobKey{Project: "p", Location: "l", JobID: "j"}}}.String()
	cur := url.QueryEscape(first.NextCursor)
	tests := []struct{ path, bad string }{
		{"/api/v1/history?sort=created&cursor=" + cur + "&from=" + url.QueryEscape(stamp(t0)), "cursor"},
		{"/api/v1/history?sort=created&cursor=" + cur + "&to=" + url.QueryEscape(stamp(t0.Add(3*time.Hour))), "cursor"},
		{"/api/v1/history?sort=-created&cursor=" + cur, "cursor"},
		{"/api/v1/history?cursor=" + url.QueryEscape(running), "cursor"},
		{"/api/v1/jobs?sort=created&cursor=" + cur, "cursor"},
	}
	for _, tt := range tests {
		w := get(t, h, tt.path)
		var pr problem
		if err := json.Unmarshal(w.Body.Bytes(), &pr); err != nil {
			t.Fatalf("%s: %v", tt.path, err)
		}
		if w.Code != http.StatusBadRequest || len(pr.Invalid) != 1 || pr.Invalid[0].Name != tt.bad {
			t.Errorf("GET %s = %d %+v, want 400 naming %s", tt.path, w.Code, pr.Invalid, tt.bad)
		}
	}
	same := "/api/v1/history?sort=created&cursor=" + cur + "&from=" + url.QueryEscape(first.From) + "&to=" + url.QueryEscape(first.To)
	if w := get(t, h, same); w.Code != http.StatusOK {
		t.Errorf("a cursor with its own range: %d %s", w.Code, w.Body)
	}
}

// TestHistoryWalk lists the finished jobs of random organizations page by
// page, in every order, and checks the pages against the fold of each job's
// events: every job that finished in the range once, in the order the sort
// names, and nothing else, however small the pages. Between pages, more jobs
// finish in the range; the walk holds every job present throughout once.
func TestHistoryWalk(t *testing.T) {
	l := newLog(t)
	r := rand.New(rand.NewPCG(3, 5))
	evs := randomHistory(r, 300)
	if err := l.Append(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	p, _ := newProjection(t, l, t0.Add(3*time.Hour), Config{})
	sp := span{from: t0.Add(30 * time.Minute), to: t0.Add(150 * time.Minute)}
	want := finishedIn(evs, sp)
	if len(want) < 100 {
		t.Fatalf("only %d jobs finished in the range; the walk wants more", len(want))
	}
	for _, sort := range []string{"-ended", "ended", "-running", "created", "-slot_ms", "bytes"} {
		t.Run(sort, func(t *testing.T) {
			q := url.Values{"sort": {sort}, "limit": {"7"}, "from": {stamp(sp.from)}, "to": {stamp(sp.to)}}
			var got []string
			pages := 0
			for {
				pg := getHistory(t, asAdmin(p.Handler()), q.Encode())
				got = append(got, pg.ids()...)
				if pages++; pg.NextCursor == "" || pages > 100 {
					break
				}
				if pages == 3 { // more jobs finish in the range meanwhile
					more := randomHistory(rand.New(rand.NewPCG(uint64(len(sort)), 9)), 20)
					if err := l.Append(t.Context(), more); err != nil {
						t.Fatal(err)
					}
				}
				q = url.Values{"sort": {sort}, "limit": {"7"}, "cursor": {pg.NextCursor}}
			}
			wantIDs := sortedIDs(want, sort)
			if diff := gocmp.Diff(wantIDs, onlyOf(got, want)); diff != "" {
				t.Errorf("jobs of the range in the walk (-want +got):\n%s", diff)
			}
			if dup := duplicates(got); len(dup) > 0 {
				t.Errorf("jobs listed twice: %v", dup)
			}
		})
	}
}

// randomHistory returns the events of n jobs created over three hours
// from t0; most finish, some fail, some are closed by reconciliation
// without an end time, some run on, and each event may come twice.
func randomHistory(r *rand.Rand, n int) []events.Event {
	var evs []events.Event
	for i := range n {
		s := jobStory(fmt.Sprintf("p-%d", r.IntN(4)), []string{"US", "EU"}[r.IntN(2)], fmt.Sprintf("job_%d_%d", r.Uint32(), i))
		created := t0.Add(time.Duration(r.Int64N(int64(3 * time.Hour))))
		started := created.Add(time.Duration(r.Int64N(int64(time.Minute))))
		ended := started.Add(time.Duration(r.Int64N(int64(20 * time.Minute))))
		job := []events.Event{s.inserted(created, events.StatePending, events.Facts{Principal: fmt.Sprintf("u%d@acme.example", r.IntN(5)),
			JobType: events.JobTypeQuery, Query: "SELECT 1"})}
		if r.IntN(3) > 0 {
			job = append(job, s.started(started))
		}
		if r.IntN(2) == 0 {
			job = append(job, s.progress(started.Add(time.Second), r.Int64N(1e9), r.Int64N(1e12)))
		}
		switch r.IntN(10) {
		case 0: // runs on
		case 1: // closed without an end time, then another DONE entry minutes later
			closed := ended.Add(time.Duration(r.Int64N(int64(5 * time.Minute))))
			job = append(job, s.event(events.KindReconciled, closed, events.StateDone, events.Facts{}),
				s.event(events.KindStateChanged, closed.Add(time.Minute+time.Duration(r.Int64N(int64(time.Minute)))), events.StateDone, events.Facts{}))
		case 2:
			e := s.completed(ended)
			e.Error = &events.JobError{Code: "stopped", Message: "Job cancelled"}
			job = append(job, e)
		default:
			e := s.completed(ended.Add(time.Duration(r.Int64N(int64(2 * time.Second)))))
			e.EndTime = ended
			e.SlotMs = events.Int64(r.Int64N(1e9))
			job = append(job, e)
		}
		for _, e := range job {
			evs = append(evs, e)
			if r.IntN(4) == 0 {
				evs = append(evs, e)
			}
		}
	}
	return evs
}

// finishedIn folds evs by job and returns the jobs that finished in sp.
func finishedIn(evs []events.Event, sp span) map[string]finished {
	byJob := map[events.JobKey][]events.Event{}
	for _, e := range evs {
		byJob[e.Job] = append(byJob[e.Job], e)
	}
	out := map[string]finished{}
	for k, jevs := range byJob {
		j := events.Fold(k, jevs)
		if !j.Done() {
			continue
		}
		// The end: as known, else the first DONE event's time.
		end := j.EndTime
		slices.SortFunc(jevs, func(a, b events.Event) int { return a.Time.Compare(b.Time) })
		for _, e := range jevs {
			if end.IsZero() && e.State == events.StateDone {
				end = e.Time
			}
		}
		if !end.Before(sp.from) && end.Before(sp.to) {
			out[idOf(&k)] = finished{job: j, end: end}
		}
	}
	return out
}

type finished struct {
	job events.Job
	end time.Time
}

// sortedIDs orders the jobs as the API's sort does, independently of its
// code: unknown values last, ties by id.
func sortedIDs(jobs map[string]finished, sort string) []string {
	name, desc := strings.CutPrefix(sort, "-")
	value := func(f finished) (int64, bool) {
		j := f.job
		ms := func(t time.Time) (int64, bool) { return t.UnixMilli(), !t.IsZero() }
		switch name {
		case "ended":
			return ms(f.end)
		case "created":
			return ms(j.CreateTime)
		case "running":
			if j.StartTime.IsZero() {
				return 0, false
			}
			return f.end.UnixMilli() - j.StartTime.UnixMilli(), true
		case "slot_ms":
			if j.SlotMs == nil {
				return 0, false
			}
			return *j.SlotMs, true
		case "bytes":
			if j.BytesProcessed == nil {
				return 0, false
			}
			return *j.BytesProcessed, true
		}
		panic("no sort " + name)
	}
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range jobs {
			if !yield(id) {
				return
			}
		}
	})
	slices.SortStableFunc(ids, func(a, b string) int {
		va, ka := value(jobs[a])
		vb, kb := value(jobs[b])
		switch {
		case ka != kb:
			if ka {
				return -1
			}
			return 1
		case !ka || va == vb:
			return 0
		case desc == (va > vb):
			return -1
		}
		return 1
	})
	return ids
}

// onlyOf keeps the ids that are keys of jobs, in order.
func onlyOf(ids []string, jobs map[string]finished) []string {
	var out []string
	for _, id := range ids {
		if _, ok := jobs[id]; ok {
			out = append(out, id)
		}
	}
	return out
}

func duplicates(ids []string) []string {
	seen := map[string]bool{}
	var dup []string
	for _, id := range ids {
		if seen[id] {
			dup = append(dup, id)
		}
		seen[id] = true
	}
	return dup
}

// TestHistoryTooManyJobs refuses a range with more finished jobs than one
// request may read.
func TestHistoryTooManyJobs(t *testing.T) {
	p, _ := historyScenario(t, Config{History: HistoryConfig{MaxJobs: 2}})
	w := get(t, asAdmin(p.Handler()), "/api/v1/history")
	goldenHistory(t, "history-too-many", w.Result(), w.Body.Bytes())
	// Five jobs have a DONE event in the hour or its lateness margin; four
	// of them ended in the hour.
	p5, _ := historyScenario(t, Config{History: HistoryConfig{MaxJobs: 5}})
	if pg := getHistory(t, asAdmin(p5.Handler()), ""); pg.Total != 4 {
		t.Errorf("with room for five, the range lists %d jobs, want 4", pg.Total)
	}
}

// TestHistoryLimitCountsTheCallersJobs: the limit on finished jobs counts,
// for a caller who sees only its own, its own jobs: other people's neither
// refuse its request nor tell it, through a refusal, how many finished.
func TestHistoryLimitCountsTheCallersJobs(t *testing.T) {
	p, _ := historyScenario(t, Config{History: HistoryConfig{MaxJobs: 2}})
	stranger := access.Principal{Email: "carol@partner.example", Role: access.RoleOwn, Method: access.ModeIAP}
	if pg := getHistory(t, as(stranger, p.Handler()), ""); pg.Total != 0 {
		t.Errorf("an own caller with no jobs sees %d", pg.Total)
	}
	// Five jobs have a DONE event in the range or its margin; two of the
	// four that ended in it ran as etl.
	etl := access.Principal{Email: "etl@acme-etl.iam.gserviceaccount.com", Role: access.RoleOwn, Method: access.ModeOIDC}
	if pg := getHistory(t, as(etl, p.Handler()), ""); pg.Total != 2 {
		t.Errorf("etl sees %d of its jobs, want its 2", pg.Total)
	}
	p1, _ := historyScenario(t, Config{History: HistoryConfig{MaxJobs: 1}})
	if w := get(t, as(etl, p1.Handler()), "/api/v1/history"); w.Code != http.StatusBadRequest {
		t.Errorf("etl's 2 jobs with room for 1: %d, want 400", w.Code)
	}
}

// stallingLog is an event log whose time-range reads hang, as a Bigtable
// that does not answer does: until their context ends or, when hold is
// set, until hold is closed, whatever their context. It tells when a read
// is waiting.
type stallingLog struct {
	*events.Log
	waiting chan struct{}
	hold    chan struct{}
}

func (l *stallingLog) Range(ctx context.Context, from, to time.Time, fn func(events.Event) error) error {
	l.waiting <- struct{}{}
	if l.hold != nil {
		<-l.hold
	} else {
		<-ctx.Done()
	}
	return fmt.Errorf("reading events: %w: %w", events.ErrUnavailable, context.DeadlineExceeded)
}

// TestHistoryDeadline answers 503 with Retry-After when the log does not
// answer within the history's timeout.
func TestHistoryDeadline(t *testing.T) {
	l := &stallingLog{Log: newLog(t), waiting: make(chan struct{}, 1)}
	p, err := New(Config{RetryAfter: 3 * time.Second, History: HistoryConfig{Timeout: 100 * time.Millisecond}}, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := get(t, asAdmin(p.Handler()), "/api/v1/history")
	goldenHistory(t, "history-deadline", w.Result(), w.Body.Bytes())
}

// TestHistoryBusy answers 503 with Retry-After when every place for reading
// the log stays taken until the request's deadline.
func TestHistoryBusy(t *testing.T) {
	l := &stallingLog{Log: newLog(t), waiting: make(chan struct{}, 1), hold: make(chan struct{})}
	p, err := New(Config{RetryAfter: 3 * time.Second, History: HistoryConfig{Timeout: 100 * time.Millisecond, Concurrency: 1}}, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := asAdmin(p.Handler())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(&discard{header: http.Header{}}, httptest.NewRequest(http.MethodGet, "/api/v1/history", nil))
	}()
	<-l.waiting // that request holds the only place
	w := get(t, h, "/api/v1/history")
	close(l.hold)
	<-done
	goldenHistory(t, "history-busy", w.Result(), w.Body.Bytes())
}

// TestHistoryBeforeReady serves the history while the running list is not
// rebuilt yet: it needs only the log.
func TestHistoryBeforeReady(t *testing.T) {
	l := newLog(t)
	if err := l.Append(t.Context(), historyEvents()); err != nil {
		t.Fatal(err)
	}
	c := fakeclock.New(t0.Add(2 * time.Hour))
	p, err := New(Config{Now: c.Now}, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := getHistory(t, asAdmin(p.Handler()), "").ids(); len(got) != 4 {
		t.Errorf("history before the rebuild: %v, want the 4 jobs of the hour", got)
	}
	if w := get(t, asAdmin(p.Handler()), "/api/v1/jobs"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("the running list before the rebuild: %d, want 503", w.Code)
	}
}

// TestHistorySQL holds the SQL a history answer gives to golden files, with
// its timestamps relative to t0.
func TestHistorySQL(t *testing.T) {
	p, _ := historyScenario(t, observer)
	noProject, _ := historyScenario(t, Config{History: HistoryConfig{BigQueryDataset: "history"}})
	tests := []struct {
		name  string
		p     *Projection
		query string
	}{
		{"plain", p, ""},
		{"filtered", p, "project=acme-etl&location=us&user=Ann@Acme.Example&reservation=admin:US.etl&type=query&statement_type=merge&state=failed&min_running=90s&sort=running"},
		{"searched", p, "q=Customers+it's&label=env=prod&label=team=o'brien&sort=-bytes"},
		{"no-project", noProject, "state=succeeded&sort=created"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := get(t, asAdmin(tt.p.Handler()), "/api/v1/history?"+tt.query)
			var body struct {
				SQL string `json:"bigquery_sql"`
				URL string `json:"bigquery_console_url"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusOK {
				t.Fatalf("%d %v\n%s", w.Code, err, w.Body)
			}
			sql := sqlStamps.ReplaceAllStringFunc(body.SQL, func(s string) string {
				ts, err := time.Parse("2006-01-02 15:04:05.999999", sqlStamps.FindStringSubmatch(s)[1])
				if err != nil {
					t.Fatalf("%s: %v", s, err)
				}
				return "TIMESTAMP 't0+" + ts.Sub(t0).String() + "'"
			})
			golden.Text(t, filepath.Join("testdata", "history-sql-"+tt.name+".golden.sql"), "-- "+body.URL+"\n"+sql)
		})
	}
}

func TestSQLString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `'plain'`},
		{`it's a \ test`, `'it\'s a \\ test'`},
		{"line\nbreak\ttab\x00nul\x7f", `'line\x0abreak\x09tab\x00nul\x7f'`},
		{"ünïcode ✓", `'ünïcode ✓'`},
	}
	for _, tt := range tests {
		if got := sqlString(tt.in); got != tt.want {
			t.Errorf("sqlString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestHistoryColumnsKnown checks that every job field the SQL names has a
// history column, so a renamed field cannot leave a hole in the SQL.
func TestHistoryColumnsKnown(t *testing.T) {
	names := slices.Concat(selected, dimFields[:], []string{"State", "Error", "Labels", "EndTime", "StartTime", "CreateTime",
		"SlotMs", "BytesProcessed", "DestinationTable", "ReferencedTables", "SourceTables", "JobID", "Principal", "Query"})
	for _, name := range names {
		if column[name] == "" {
			t.Errorf("job field %s has no history column", name)
		}
	}
}
