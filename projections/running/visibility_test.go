package running

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/projections/access"
)

// The callers of the visibility tests, one a role.
var (
	admin     = access.Principal{Email: "carol@acme.example", Role: access.RoleAdmin, ShowQueries: true, Method: access.ModeIAP}
	viewer    = access.Principal{Email: "bob@acme.example", Role: access.RoleViewer, Method: access.ModeIAP}
	dba       = access.Principal{Email: "dba@acme.example", Role: access.RoleViewer, ShowQueries: true, Method: access.ModeIAP}
	ownAlice  = access.Principal{Email: "alice@acme.example", Role: access.RoleOwn, Method: access.ModeIAP}
	ownNobody = access.Principal{Email: "dana@acme.example", Role: access.RoleOwn, Method: access.ModeIAP}
	noRole    = access.Principal{Email: "mallory@evil.example", Method: access.ModeIAP}
)

// callers are the callers by name, for table-driven tests.
var callers = []struct {
	name string
	p    access.Principal
}{
	{"admin", admin}, {"viewer", viewer}, {"viewer with show_queries", dba},
	{"own", ownAlice}, {"own without jobs", ownNobody}, {"no role", noRole},
}

// sight is what a caller sees of one job: its id and its query text, or
// "hidden".
type sight struct{ Job, Query string }

// visibilityProjection lists three jobs: alice's and bob's queries, whose
// texts name them, and bob's load job, which has no query.
func visibilityProjection(t *testing.T) (*Projection, time.Time) {
	t.Helper()
	now := t0.Add(time.Hour)
	a, b, l := jobStory("acme-bi", "US", "alices_query"), jobStory("acme-etl", "EU", "bobs_query"), jobStory("acme-etl", "EU", "bobs_load")
	ad, bd := jobStory("acme-bi", "US", "alices_done"), jobStory("acme-etl", "EU", "bobs_done")
	log := newLog(t)
	err := log.Append(t.Context(), []events.Event{
		ad.inserted(now.Add(-20*time.Minute), events.StateRunning, events.Facts{Principal: "alice@acme.example", JobType: "QUERY", Query: "SELECT secret_alice_done"}),
		ad.completed(now.Add(-10 * time.Minute)),
		bd.inserted(now.Add(-20*time.Minute), events.StateRunning, events.Facts{Principal: "bob@acme.example", JobType: "QUERY", Query: "SELECT secret_bob_done"}),
		bd.completed(now.Add(-10 * time.Minute)),
		a.inserted(now.Add(-3*time.Minute), events.StateRunning, events.Facts{Principal: "Alice@acme.example", JobType: "QUERY", Query: "SELECT secret_alice FROM t"}),
		b.inserted(now.Add(-2*time.Minute), events.StateRunning, events.Facts{Principal: "bob@acme.example", JobType: "QUERY", Query: "SELECT secret_bob FROM u"}),
		l.inserted(now.Add(-1*time.Minute), events.StatePending, events.Facts{Principal: "bob@acme.example", JobType: "LOAD"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := newProjection(t, log, now, Config{})
	return p, now
}

// sights reads what a list of jobs shows.
func sights(t *testing.T, jobs []jobJSON) []sight {
	t.Helper()
	out := []sight{}
	for _, j := range jobs {
		s := sight{Job: j.Key.JobID, Query: j.Query}
		if j.QueryHidden {
			if j.Query != "" || j.QueryTruncated || j.QueryPreview {
				t.Errorf("job %s: hidden, yet carries %q (truncated %v, preview %v)", j.Key.JobID, j.Query, j.QueryTruncated, j.QueryPreview)
			}
			s.Query = "hidden"
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b sight) int { return strings.Compare(a.Job, b.Job) })
	return out
}

var (
	alices   = sight{"alices_query", "SELECT secret_alice FROM t"}
	alicesH  = sight{"alices_query", "hidden"}
	bobs     = sight{"bobs_query", "SELECT secret_bob FROM u"}
	bobsH    = sight{"bobs_query", "hidden"}
	bobsLoad = sight{"bobs_load", ""}
)

// TestVisibilityList checks the list, with and without a search, for each
// role: an own caller lists only its jobs, a viewer without show_queries
// reads and searches only its own jobs' query text.
func TestVisibilityList(t *testing.T) {
	p, _ := visibilityProjection(t)
	want := map[string]map[string][]sight{
		"admin":                    {"": {alices, bobsLoad, bobs}, "q=secret_alice": {alices}, "q=secret_bob": {bobs}, "q=bob": {bobsLoad, bobs}},
		"viewer":                   {"": {alicesH, bobsLoad, bobs}, "q=secret_alice": {}, "q=secret_bob": {bobs}, "q=alice": {alicesH}},
		"viewer with show_queries": {"": {alices, bobsLoad, bobs}, "q=secret_alice": {alices}, "q=secret_bob": {bobs}},
		"own":                      {"": {alices}, "q=secret_alice": {alices}, "q=secret_bob": {}, "user=bob@acme.example": {}},
		"own without jobs":         {"": {}, "q=secret": {}},
		"no role":                  {"": {}, "q=secret": {}},
	}
	checkPages(t, p, "/api/v1/jobs", want)
}

// TestVisibilityHistory: the history of finished jobs lists, and searches,
// only what the caller may see, each job as the caller may see it.
func TestVisibilityHistory(t *testing.T) {
	p, _ := visibilityProjection(t)
	alices, bobs := sight{"alices_done", "SELECT secret_alice_done"}, sight{"bobs_done", "SELECT secret_bob_done"}
	alicesH := sight{"alices_done", "hidden"}
	want := map[string]map[string][]sight{
		"admin":                    {"": {alices, bobs}, "q=secret_alice_done": {alices}},
		"viewer":                   {"": {alicesH, bobs}, "q=secret_alice_done": {}, "q=secret_bob_done": {bobs}},
		"viewer with show_queries": {"": {alices, bobs}, "q=secret_alice_done": {alices}},
		"own":                      {"": {alices}, "q=secret_bob_done": {}, "user=bob@acme.example": {}},
		"own without jobs":         {"": {}},
		"no role":                  {"": {}},
	}
	checkPages(t, p, "/api/v1/history", want)
}

// checkPages asks path for one page as each caller, with each query of
// want[caller], and checks what it shows.
func checkPages(t *testing.T, p *Projection, path string, want map[string]map[string][]sight) {
	t.Helper()
	for _, c := range callers {
		for query, sights_ := range want[c.name] {
			t.Run(c.name+"/"+query, func(t *testing.T) {
				var page struct {
					Jobs  []jobJSON `json:"jobs"`
					Total int       `json:"total"`
				}
				w := get(t, as(c.p, p.Handler()), path+"?"+query)
				if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || w.Code != http.StatusOK {
					t.Fatalf("%s: %d %v %s", path, w.Code, err, w.Body)
				}
				if diff := cmp.Diff(sights_, sights(t, page.Jobs)); diff != "" || page.Total != len(sights_) {
					t.Errorf("%s, %d jobs (-want +got):\n%s", path, page.Total, diff)
				}
			})
		}
	}
}

// TestVisibilityHistorySQL: the SQL an own caller is offered lists its own
// jobs only, like the page it comes with.
func TestVisibilityHistorySQL(t *testing.T) {
	p, _ := visibilityProjection(t)
	for _, tc := range []struct {
		caller access.Principal
		owned  bool
	}{{admin, false}, {viewer, false}, {ownAlice, true}} {
		var page struct {
			SQL string `json:"bigquery_sql"`
		}
		if err := json.Unmarshal(get(t, as(tc.caller, p.Handler()), "/api/v1/history").Body.Bytes(), &page); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(page.SQL, "LOWER(user_email) = 'alice@acme.example'"); got != tc.owned {
			t.Errorf("%s: the SQL restricts to alice's jobs: %v, want %v\n%s", tc.caller.Email, got, tc.owned, page.SQL)
		}
	}
}

// TestVisibilityDetail checks a job's detail and its timeline: a job the
// caller may not see is not found, and a hidden query is hidden in the job
// and in every event that carried it.
func TestVisibilityDetail(t *testing.T) {
	p, _ := visibilityProjection(t)
	path := "/api/v1/jobs/acme-bi/US/alices_query"
	type detail struct {
		Status   int
		Query    string
		Hidden   bool
		Timeline []string // each event's kind, and its query or "hidden"
	}
	shown := detail{Status: 200, Query: "SELECT secret_alice FROM t", Timeline: []string{"inserted SELECT secret_alice FROM t"}}
	hidden := detail{Status: 200, Hidden: true, Timeline: []string{"inserted hidden"}}
	for _, tc := range []struct {
		caller access.Principal
		want   detail
	}{
		{admin, shown}, {viewer, hidden}, {dba, shown}, {ownAlice, shown},
		{ownNobody, detail{Status: 404}}, {noRole, detail{Status: 404}},
	} {
		t.Run(tc.caller.Email+" "+tc.caller.Role.String(), func(t *testing.T) {
			w := get(t, as(tc.caller, p.Handler()), path)
			got := detail{Status: w.Code}
			if w.Code == http.StatusOK {
				var d struct {
					Job    jobJSON `json:"job"`
					Events []struct {
						Kind        string `json:"kind"`
						Query       string `json:"query"`
						QueryHidden bool   `json:"query_hidden"`
					} `json:"events"`
				}
				if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
					t.Fatal(err)
				}
				got.Query, got.Hidden = d.Job.Query, d.Job.QueryHidden
				for _, e := range d.Events {
					q := e.Query
					if e.QueryHidden {
						q = "hidden" + e.Query
					}
					got.Timeline = append(got.Timeline, e.Kind+" "+q)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("detail of alice's job (-want +got):\n%s", diff)
			}
		})
	}
	// A viewer reads its own job's query whole.
	w := get(t, as(viewer, p.Handler()), "/api/v1/jobs/acme-etl/EU/bobs_query")
	if !strings.Contains(w.Body.String(), "secret_bob") || strings.Contains(w.Body.String(), "query_hidden") {
		t.Errorf("bob's detail of his own job: %s", w.Body)
	}
}

// TestVisibilitySummary: an own caller's summary counts only its jobs; the
// oldest running job is shown as the caller may see it.
func TestVisibilitySummary(t *testing.T) {
	p, _ := visibilityProjection(t)
	type summary struct {
		Jobs    int
		Users   []string
		Oldest  string
		Queried string
	}
	for _, tc := range []struct {
		caller access.Principal
		want   summary
	}{
		{admin, summary{3, []string{"bob@acme.example", "Alice@acme.example"}, "alices_query", "SELECT secret_alice FROM t"}},
		{viewer, summary{3, []string{"bob@acme.example", "Alice@acme.example"}, "alices_query", "hidden"}},
		{ownAlice, summary{1, []string{"Alice@acme.example"}, "alices_query", "SELECT secret_alice FROM t"}},
		{ownNobody, summary{0, nil, "", ""}},
		{noRole, summary{0, nil, "", ""}},
	} {
		t.Run(tc.caller.Email, func(t *testing.T) {
			var s struct {
				Jobs   int      `json:"jobs"`
				ByUser []group  `json:"by_user"`
				Oldest *jobJSON `json:"oldest_running"`
			}
			w := get(t, as(tc.caller, p.Handler()), "/api/v1/summary")
			if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
				t.Fatal(err)
			}
			got := summary{Jobs: s.Jobs}
			for _, g := range s.ByUser {
				got.Users = append(got.Users, g.Key)
			}
			if s.Oldest != nil {
				got.Oldest, got.Queried = s.Oldest.Key.JobID, s.Oldest.Query
				if s.Oldest.QueryHidden {
					got.Queried = "hidden"
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVisibilityLegacy: the 2019 endpoint lists only what the caller may
// see (it carries no query text).
func TestVisibilityLegacy(t *testing.T) {
	p, _ := visibilityProjection(t)
	for _, tc := range []struct {
		caller access.Principal
		want   []string
	}{
		{admin, []string{"alices_query", "bobs_load", "bobs_query"}},
		{viewer, []string{"alices_query", "bobs_load", "bobs_query"}},
		{ownAlice, []string{"alices_query"}},
		{ownNobody, []string{}},
		{noRole, []string{}},
	} {
		var l legacyJSON
		w := get(t, as(tc.caller, p.Handler()), "/_ah/get-handlers/v1/jobs")
		if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, j := range l.Data {
			got = append(got, j.JobID)
		}
		slices.Sort(got)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: legacy list (-want +got):\n%s", tc.caller.Email, diff)
		}
	}
}

// TestVisibilityStream: a stream's snapshot and its changes carry only the
// jobs the caller may see, each as the caller may see it.
func TestVisibilityStream(t *testing.T) {
	for _, tc := range []struct {
		caller   access.Principal
		snapshot []sight
		changes  []sight
	}{
		{admin, []sight{alices, bobsLoad, bobs}, []sight{{"alices_next", "SELECT secret_alice_2"}, {"bobs_next", "SELECT secret_bob_2"}}},
		{viewer, []sight{alicesH, bobsLoad, bobs}, []sight{{"alices_next", "hidden"}, {"bobs_next", "SELECT secret_bob_2"}}},
		{ownAlice, []sight{alices}, []sight{{"alices_next", "SELECT secret_alice_2"}}},
		{ownNobody, []sight{}, []sight{}},
		{noRole, []sight{}, []sight{}},
	} {
		t.Run(tc.caller.Email+" "+tc.caller.Role.String(), func(t *testing.T) {
			p, now := visibilityProjection(t)
			srv := httptest.NewServer(as(tc.caller, p.Handler()))
			t.Cleanup(srv.Close)
			c := openStream(t, srv, "snapshot=true")
			var snap []jobJSON
			for {
				ev := c.next(t)
				if ev.name == evSynced {
					break
				}
				var j jobJSON
				if err := json.Unmarshal([]byte(ev.data), &j); err != nil {
					t.Fatal(err)
				}
				snap = append(snap, j)
			}
			if diff := cmp.Diff(tc.snapshot, sights(t, snap)); diff != "" {
				t.Errorf("snapshot (-want +got):\n%s", diff)
			}
			mustApply(t, p,
				jobStory("acme-bi", "US", "alices_next").inserted(now, events.StateRunning, events.Facts{Principal: "alice@acme.example", Query: "SELECT secret_alice_2"}),
				jobStory("acme-etl", "EU", "bobs_next").inserted(now, events.StateRunning, events.Facts{Principal: "bob@acme.example", Query: "SELECT secret_bob_2"}))
			var changed []jobJSON
			for range tc.changes {
				var j jobJSON
				if err := json.Unmarshal([]byte(c.next(t).data), &j); err != nil {
					t.Fatal(err)
				}
				changed = append(changed, j)
			}
			c.quiet(t)
			if diff := cmp.Diff(tc.changes, sights(t, changed)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStreamEndsAtExpiry: a stream ends when the caller's credential
// expires, so that its client comes back with a fresh one.
func TestStreamEndsAtExpiry(t *testing.T) {
	p, _ := visibilityProjection(t)
	caller := viewer
	caller.Expires = time.Now().Add(300 * time.Millisecond)
	srv := httptest.NewServer(as(caller, p.Handler()))
	t.Cleanup(srv.Close)
	c := openStream(t, srv, "")
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream outlived its caller's credential by seconds")
	}
}

// TestMe answers who the caller is, for each role.
func TestMe(t *testing.T) {
	p, _ := visibilityProjection(t)
	exp := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	withExpiry := viewer
	withExpiry.Expires = exp
	for _, tc := range []struct {
		caller access.Principal
		want   string
	}{
		{access.Anonymous(), `{"email":"anonymous","role":"admin","show_queries":true,"method":"none","can_cancel":true}`},
		{admin, `{"email":"carol@acme.example","role":"admin","show_queries":true,"method":"iap","can_cancel":true}`},
		{withExpiry, `{"email":"bob@acme.example","role":"viewer","show_queries":false,"method":"iap","expires":"2025-03-03T09:00:00Z","can_cancel":false}`},
		{ownAlice, `{"email":"alice@acme.example","role":"own","show_queries":false,"method":"iap","can_cancel":false}`},
	} {
		w := get(t, as(tc.caller, p.Handler()), "/api/v1/me")
		if got := strings.TrimSpace(w.Body.String()); w.Code != http.StatusOK || got != tc.want {
			t.Errorf("%s: %d %s, want %s", tc.caller.Email, w.Code, got, tc.want)
		}
	}
}
