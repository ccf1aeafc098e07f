package running

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
)

// Material for an organization's worth of made-up jobs.
var (
	orgProjects     = []string{"acme-etl", "acme-bi", "Acme-ML", "sandbox", "google.com:acme", "acme"}
	orgLocations    = []string{"US", "EU", "europe-west4", "us"}
	orgUsers        = []string{"ann@acme.example", "Bob@acme.example", "etl@acme-etl.iam.gserviceaccount.com", ""}
	orgReservations = []string{"admin:US.etl", "admin:US.bi", ""}
	orgStatements   = []string{"SELECT", "MERGE", "INSERT", ""}
	orgQueries      = []string{
		"SELECT customer_id, SUM(amount) FROM `acme-bi.sales.orders` GROUP BY 1",
		"MERGE `acme-etl.core.customers` T USING `acme-etl.staging.delta` S ON T.id = S.id WHEN MATCHED THEN UPDATE SET email = S.email",
		"INSERT INTO `acme-bi.reporting.kpis` SELECT DATE(ts), COUNT(*) FROM `acme-bi.web.events` GROUP BY 1",
		"-- Looker Query Context '{\"user_id\":42}'\nSELECT campaign FROM `acme.ads.clicks` WHERE day = 'Ünïcode'",
	}
	orgLabels = []map[string]string{{"team": "growth", "env": "prod"}, {"dag": "orders_daily", "env": "prod"}, nil, {"team": "ml"}}
)

// orgEvents returns the events of n jobs in varied states, with facts known
// or not, as an organization's audit logs and enrichment would give them.
func orgEvents(r *rand.Rand, n int, now time.Time) []events.Event {
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	var evs []events.Event
	for i := range n {
		s := jobStory(pick(orgProjects), pick(orgLocations), fmt.Sprintf("job_%04d_%x", i, r.Uint32()))
		created := now.Add(-time.Duration(r.Int64N(int64(3 * time.Hour))))
		f := events.Facts{Principal: pick(orgUsers), Reservation: pick(orgReservations), Labels: orgLabels[r.IntN(len(orgLabels))],
			JobType: events.JobTypeQuery, StatementType: pick(orgStatements), Query: pick(orgQueries), Priority: "INTERACTIVE"}
		if r.IntN(8) == 0 {
			f.JobType, f.StatementType, f.Query = events.JobTypeLoad, "", ""
			f.DestinationTable = "acme-etl.raw.load_" + fmt.Sprint(i)
		}
		f.ReferencedTables = []string{"acme-bi.sales.orders_" + fmt.Sprint(i%5)}
		evs = append(evs, s.inserted(created, events.StatePending, f))
		switch r.IntN(6) {
		case 0: // still queued
		case 1: // started, nothing more known
			evs = append(evs, s.started(created.Add(time.Duration(r.IntN(30))*time.Second)))
		case 2: // finished
			evs = append(evs, s.started(created.Add(time.Second)), s.completed(created.Add(time.Minute)))
		default:
			start := created.Add(time.Duration(r.IntN(30)) * time.Second)
			evs = append(evs, s.started(start), s.progress(start.Add(time.Second), r.Int64N(1e9)/1000*1000, r.Int64N(1e12)))
		}
	}
	return evs
}

// refFilter is a plain reading of the list's documented filters.
func refFilter(q url.Values, now time.Time) func(j *events.Job) bool {
	eq := func(name, v string) bool { return q.Get(name) == "" || strings.EqualFold(q.Get(name), v) }
	return func(j *events.Job) bool {
		if !eq("project", j.Key.Project) || !eq("location", j.Key.Location) || !eq("user", j.Principal) ||
			!eq("state", string(j.State)) || !eq("type", j.JobType) || !eq("statement_type", j.StatementType) ||
			!eq("reservation", j.Reservation) {
			return false
		}
		for _, l := range q["label"] {
			k, v, _ := strings.Cut(l, "=")
			if got, ok := j.Labels[k]; !ok || got != v {
				return false
			}
		}
		if d, err := time.ParseDuration(q.Get("min_running")); err == nil && (j.StartTime.IsZero() || now.Sub(j.StartTime) < d) {
			return false
		}
		fields := slices.Concat([]string{j.Key.JobID, j.Principal, j.Query, j.DestinationTable}, j.ReferencedTables, j.SourceTables)
		for k, v := range j.Labels {
			fields = append(fields, k+"="+v)
		}
		for _, term := range strings.Fields(strings.ToLower(q.Get("q"))) {
			if !slices.ContainsFunc(fields, func(f string) bool { return strings.Contains(strings.ToLower(f), term) }) {
				return false
			}
		}
		return true
	}
}

// refSort orders jobs as documented: unknown values last, ties by id.
func refSort(jobs []events.Job, sort string, now time.Time) {
	name, desc := strings.CutPrefix(sort, "-")
	value := func(j *events.Job) *int64 {
		ms := func(t time.Time) *int64 {
			if t.IsZero() {
				return nil
			}
			return events.Int64(t.UnixMilli())
		}
		switch name {
		case "created":
			return ms(j.CreateTime)
		case "started":
			return ms(j.StartTime)
		case "slot_ms":
			return j.SlotMs
		case "bytes":
			return j.BytesProcessed
		}
		if j.StartTime.IsZero() {
			return nil
		}
		return events.Int64(now.Sub(j.StartTime).Milliseconds())
	}
	slices.SortStableFunc(jobs, func(a, b events.Job) int {
		va, vb := value(&a), value(&b)
		id := strings.Compare(idOf(&a.Key), idOf(&b.Key))
		switch {
		case va == nil && vb == nil:
			return id
		case va == nil:
			return 1
		case vb == nil:
			return -1
		case *va != *vb && desc:
			return cmp.Compare(*vb, *va)
		case *va != *vb:
			return cmp.Compare(*va, *vb)
		}
		return id
	})
}

// refList is what the list must hold for q: every job not DONE that matches.
func refList(evs []events.Event, q url.Values, now time.Time) []events.JobKey {
	byJob := map[events.JobKey][]events.Event{}
	for _, e := range evs {
		byJob[e.Job] = append(byJob[e.Job], e)
	}
	match := refFilter(q, now)
	var jobs []events.Job
	for _, k := range slices.SortedFunc(maps.Keys(byJob), func(a, b events.JobKey) int { return compareIDs(&a, &b) }) {
		j := events.Fold(k, byJob[k])
		if !j.Done() && match(&j) {
			jobs = append(jobs, j)
		}
	}
	refSort(jobs, cmp.Or(q.Get("sort"), "-running"), now)
	var keys []events.JobKey
	for i := range jobs {
		keys = append(keys, jobs[i].Key)
	}
	return keys
}

// pageWire is a page as a client decodes it.
type pageWire struct {
	Jobs []struct {
		Key keyJSON `json:"key"`
	} `json:"jobs"`
	Total      int    `json:"total"`
	NextCursor string `json:"next_cursor"`
}

// walk reads every page of the list for q through the handler.
func walk(t *testing.T, h http.Handler, q url.Values, limit int) (keys []events.JobKey, totals []int) {
	t.Helper()
	cursor := ""
	for range 10000 {
		v := maps.Clone(q)
		v.Set("limit", fmt.Sprint(limit))
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		w := get(t, h, "/api/v1/jobs?"+v.Encode())
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", v.Encode(), w.Code, w.Body)
		}
		var pg pageWire
		if err := json.Unmarshal(w.Body.Bytes(), &pg); err != nil {
			t.Fatal(err)
		}
		for _, j := range pg.Jobs {
			keys = append(keys, events.JobKey{Project: j.Key.Project, Location: j.Key.Location, JobID: j.Key.JobID})
		}
		totals = append(totals, pg.Total)
		if cursor = pg.NextCursor; cursor == "" {
			return keys, totals
		}
	}
	t.Fatal("the pages never end")
	return nil, nil
}

func TestListMatchesReference(t *testing.T) {
	now := t0.Add(3 * time.Hour)
	evs := orgEvents(rand.New(rand.NewPCG(3, 4)), 400, now)
	p, _ := newProjection(t, nil, now, Config{})
	mustApply(t, p, evs...)
	h := asAdmin(p.Handler())
	queries := []string{
		"",
		"sort=created", "sort=-created", "sort=started", "sort=-started", "sort=running", "sort=-running",
		"sort=slot_ms", "sort=-slot_ms", "sort=bytes", "sort=-bytes",
		"project=acme-etl", "project=ACME-ml", "project=google.com:acme", "project=acme", "project=nowhere",
		"location=us&sort=bytes", "user=bob@ACME.example", "state=pending", "state=RUNNING&sort=-slot_ms",
		"type=load", "type=QUERY&statement_type=merge", "reservation=admin:US.etl",
		"label=env=prod", "label=env=prod&label=team=growth", "label=team=", "min_running=2h", "min_running=1h&sort=running",
		"q=orders", "q=MERGE  customers", "q=ünïcode", "q=env=prod", "q=job_01", "q=acme-etl.raw", "q=nothing-matches",
		"project=acme-bi&state=running&q=select&sort=-slot_ms",
	}
	for _, raw := range queries {
		q, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatal(err)
		}
		want := refList(evs, q, now)
		for _, limit := range []int{1, 7, 1000} {
			got, totals := walk(t, h, q, limit)
			if diff := gocmp.Diff(want, got); diff != "" {
				t.Errorf("%q limit %d: jobs (-want +got):\n%s", raw, limit, diff)
			}
			for _, total := range totals {
				if total != len(want) {
					t.Errorf("%q limit %d: total %d, want %d", raw, limit, total, len(want))
				}
			}
		}
	}
}

// TestPagesWhileTheListChanges checks that a walk through the pages while
// jobs come and go returns every job that was there throughout exactly once,
// in order.
func TestPagesWhileTheListChanges(t *testing.T) {
	now := t0.Add(3 * time.Hour)
	r := rand.New(rand.NewPCG(5, 6))
	evs := orgEvents(r, 300, now)
	p, _ := newProjection(t, nil, now, Config{})
	mustApply(t, p, evs...)
	q := url.Values{"sort": {"-created"}, "limit": {"10"}}
	before := refList(evs, q, now)
	var removed, seen []events.JobKey
	cursor := ""
	for page := 0; ; page++ {
		v := maps.Clone(q)
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		var pg pageWire
		w := get(t, asAdmin(p.Handler()), "/api/v1/jobs?"+v.Encode())
		if err := json.Unmarshal(w.Body.Bytes(), &pg); err != nil {
			t.Fatal(err)
		}
		for _, j := range pg.Jobs {
			seen = append(seen, events.JobKey{Project: j.Key.Project, Location: j.Key.Location, JobID: j.Key.JobID})
		}
		if cursor = pg.NextCursor; cursor == "" {
			break
		}
		// Between pages a job finishes and a new one arrives.
		gone := before[r.IntN(len(before))]
		s := jobStory(gone.Project, gone.Location, gone.JobID)
		s.n = 100
		s2 := jobStory("acme-new", "US", fmt.Sprintf("new_%d", page))
		mustApply(t, p, s.completed(now), s2.inserted(now.Add(-time.Duration(r.IntN(3600))*time.Second), events.StatePending, events.Facts{}))
		removed = append(removed, gone)
	}
	var throughout []events.JobKey
	for _, k := range before {
		if !slices.Contains(removed, k) {
			throughout = append(throughout, k)
		}
	}
	var got []events.JobKey
	for _, k := range seen {
		if slices.Contains(throughout, k) {
			got = append(got, k)
		}
	}
	if diff := gocmp.Diff(throughout, got); diff != "" {
		t.Errorf("jobs present throughout the walk (-want +got):\n%s", diff)
	}
}

func TestListBadRequests(t *testing.T) {
	p, _ := newProjection(t, nil, t0, Config{})
	h := asAdmin(p.Handler())
	cursorFor := func(sort string) string {
		o, _ := parseOrder(sort, runningKind)
		return cursor{order: o, pos: position{key: &events.JobKey{Project: "p", Location: "l", JobID: "j"}}}.String()
	}
	tests := []struct {
		query string
		bad   []string
	}{
		{"color=red", []string{"color"}},
		{"limit=0", []string{"limit"}},
		{"limit=1001", []string{"limit"}},
		{"limit=ten", []string{"limit"}},
		{"sort=size", []string{"sort"}},
		{"state=done", []string{"state"}},
		{"type=script", []string{"type"}},
		{"label=team", []string{"label"}},
		{"label==x", []string{"label"}},
		{"min_running=forever", []string{"min_running"}},
		{"min_running=-1m", []string{"min_running"}},
		{"project=a&project=b", []string{"project"}},
		{"q=" + strings.Repeat("x", 1001), []string{"q"}},
		{"q=" + strings.Repeat("a+", 17), []string{"q"}},
		{"cursor=!!", []string{"cursor"}},
		{"cursor=" + cursorFor("created"), []string{"cursor"}},
		{"sort=created&cursor=" + cursorFor("-created"), []string{"cursor"}},
		{"limit=0&state=done&x=1", []string{"limit", "state", "x"}},
		{"y=2&x=1", []string{"x", "y"}},
	}
	for _, tt := range tests {
		w := get(t, h, "/api/v1/jobs?"+tt.query)
		var pr problem
		if err := json.Unmarshal(w.Body.Bytes(), &pr); err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		var names []string
		for _, ip := range pr.Invalid {
			names = append(names, ip.Name)
		}
		slices.Sort(names)
		if w.Code != http.StatusBadRequest || w.Header().Get("Content-Type") != "application/problem+json" ||
			pr.Status != http.StatusBadRequest || !slices.Equal(names, tt.bad) {
			t.Errorf("%s: %d %s %+v, want 400 naming %v", tt.query, w.Code, w.Header().Get("Content-Type"), pr, tt.bad)
		}
	}
	if w := get(t, h, "/api/v1/jobs?sort=created&cursor="+cursorFor("created")); w.Code != http.StatusOK {
		t.Errorf("a cursor of the same sort: %d %s", w.Code, w.Body)
	}
}

func TestCompareIDs(t *testing.T) {
	k := func(p, l, j string) events.JobKey { return events.JobKey{Project: p, Location: l, JobID: j} }
	keys := []events.JobKey{
		k("a", "US", "j"), k("a.b", "US", "j"), k("a-b", "US", "j"), k("a:b", "US", "j"), k("ab", "US", "j"),
		k("a", "U", "j"), k("a", "US", "i"), k("a", "US", "j2"), k("a/x", "US", "j"), k("a", "x/US", "j"), k("", "", ""),
	}
	for _, a := range keys {
		for _, b := range keys {
			want := strings.Compare(idOf(&a), idOf(&b))
			if got := compareIDs(&a, &b); got != want {
				t.Errorf("compareIDs(%v, %v) = %d, want %d", a, b, got, want)
			}
		}
	}
}
