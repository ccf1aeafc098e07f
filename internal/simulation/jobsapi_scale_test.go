package simulation_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	bq "google.golang.org/api/bigquery/v2"

	"github.com/bqobserver/bqobserver/internal/simulation"
)

// listPage calls jobs.list on the API's handler directly, without a
// network in between, and returns the page and its size in bytes.
func listPage(tb testing.TB, api http.Handler, project string, q url.Values) (*bq.JobList, int) {
	tb.Helper()
	w := httptest.NewRecorder()
	api.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/bigquery/v2/projects/"+project+"/jobs?"+q.Encode(), nil))
	if w.Code != http.StatusOK {
		tb.Fatalf("listing %s?%s: %d %s", project, q.Encode(), w.Code, w.Body)
	}
	var l bq.JobList
	if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil {
		tb.Fatal(err)
	}
	return &l, w.Body.Len()
}

// openQuery asks for a project's pending and running jobs, as enrichment
// does.
func openQuery(projection string, pageSize int) url.Values {
	return url.Values{"allUsers": {"true"}, "stateFilter": {"pending", "running"}, "projection": {projection},
		"maxResults": {strconv.Itoa(pageSize)}}
}

// listAll returns every page of q on project.
func listAll(tb testing.TB, api http.Handler, project string, q url.Values) []*bq.JobListJobs {
	tb.Helper()
	var out []*bq.JobListJobs
	for {
		l, _ := listPage(tb, api, project, q)
		out = append(out, l.Jobs...)
		if l.NextPageToken == "" {
			return out
		}
		q.Set("pageToken", l.NextPageToken)
	}
}

// countOpen counts the open jobs the API lists over every project, with
// the open statements of open scripts, and returns the project with the
// most.
func countOpen(tb testing.TB, org *simulation.Org) (int, string) {
	tb.Helper()
	api := org.JobsAPI()
	total, busiest, most := 0, "", 0
	for _, p := range org.Projects() {
		open := listAll(tb, api, p, openQuery("minimal", 1000))
		total += len(open)
		if len(open) > most {
			busiest, most = p, len(open)
		}
		for _, j := range open {
			if j.Statistics.NumChildJobs > 0 {
				q := openQuery("minimal", 1000)
				q.Set("parentJobId", j.JobReference.JobId)
				total += len(listAll(tb, api, p, q))
			}
		}
	}
	return total, busiest
}

// scaleConfig is an organization of 1,000 projects that keeps about
// 10,000 jobs running once warm (ten simulated minutes): long jobs, a
// short retention.
func scaleConfig() simulation.Config {
	return simulation.Config{Seed: 21, Projects: 1000, Rate: 60, DurationScale: 20, Retention: 30 * time.Minute,
		Formats: []string{simulation.FormatV2}, Delivery: &simulation.Delivery{}}
}

// TestJobsAPIListsEveryOpenJobAtScale checks, on a smaller organization
// of the same shape, that the open jobs listed page by page over every
// project are exactly the simulation's, and that paging a busy project 7
// at a time lists what one page does.
func TestJobsAPIListsEveryOpenJobAtScale(t *testing.T) {
	cfg := scaleConfig()
	cfg.Projects, cfg.Rate = 200, 12
	org := newOrg(t, cfg)
	for range org.Generate(3 * time.Minute) {
	}
	s := org.Stats()
	got, busiest := countOpen(t, org)
	if want := s.Pending + s.Running; got != want || got < 1000 {
		t.Errorf("%d open jobs listed, the simulation has %d pending and %d running", got, s.Pending, s.Running)
	}
	one := listAll(t, org.JobsAPI(), busiest, openQuery("full", 1000))
	paged := listAll(t, org.JobsAPI(), busiest, openQuery("full", 7))
	if len(one) != len(paged) || len(one) < 50 {
		t.Fatalf("%s: %d open jobs in one page, %d in pages of 7", busiest, len(one), len(paged))
	}
	for i := range one {
		if one[i].Id != paged[i].Id {
			t.Fatalf("%s: job %d is %s in one page, %s in pages of 7", busiest, i, one[i].Id, paged[i].Id)
		}
	}
}

// BenchmarkJobsAPIList measures jobs.list at the scale enrichment must
// handle: 1,000 projects and about 10,000 running jobs, listing the busiest
// project's open jobs as enrichment does (all users, pending and running,
// every page), through the handler without a network:
//
//	go test -run '^$' -bench JobsAPIList -benchtime 20x ./internal/simulation/
func BenchmarkJobsAPIList(b *testing.B) {
	org, err := simulation.New(scaleConfig())
	if err != nil {
		b.Fatal(err)
	}
	for range org.Generate(10 * time.Minute) {
	}
	s := org.Stats()
	open, busiest := countOpen(b, org)
	if open != s.Pending+s.Running {
		b.Fatalf("%d open jobs listed, the simulation has %d", open, s.Pending+s.Running)
	}
	b.Logf("%d projects, %d running and %d pending jobs; %s has %d open jobs and %d retained",
		len(org.Projects()), s.Running, s.Pending, busiest,
		len(listAll(b, org.JobsAPI(), busiest, openQuery("minimal", 1000))),
		len(listAll(b, org.JobsAPI(), busiest, url.Values{"allUsers": {"true"}, "projection": {"minimal"}, "maxResults": {"1000"}})))
	for _, bc := range []struct {
		name       string
		projection string
		pageSize   int
		every      time.Duration // simulated time between two listings
	}{
		{"full/1000", "full", 1000, 0}, {"full/100", "full", 100, 0}, {"minimal/1000", "minimal", 1000, 0},
		{"full/1000/every-5s", "full", 1000, 5 * time.Second},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var jobs, pages, size int
			for b.Loop() {
				if bc.every > 0 {
					b.StopTimer()
					for range org.Generate(bc.every) {
					}
					b.StartTimer()
				}
				j, p, n := listOpen(b, org.JobsAPI(), busiest, openQuery(bc.projection, bc.pageSize))
				jobs, pages, size = jobs+j, pages+p, size+n
			}
			b.ReportMetric(float64(jobs)/float64(b.N), "jobs/op")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(pages), "µs/page")
			b.ReportMetric(float64(size)/float64(jobs), "bytes/job")
		})
	}
}

// listOpen lists every page of q and returns the jobs, pages and bytes it
// got. It reads only the page token and counts the jobs of each page, so
// that the benchmark measures the API, not the decoding of its answers.
func listOpen(b *testing.B, api http.Handler, project string, q url.Values) (jobs, pages, size int) {
	for {
		w := httptest.NewRecorder()
		api.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/bigquery/v2/projects/"+project+"/jobs?"+q.Encode(), nil))
		body := w.Body.Bytes()
		if w.Code != http.StatusOK {
			b.Fatalf("listing %s: %d %s", project, w.Code, body)
		}
		jobs, pages, size = jobs+bytes.Count(body, []byte(`"kind":"bigquery#job"`)), pages+1, size+len(body)
		// The page token, if any, is the list's last field: …,"nextPageToken":"TOKEN"}
		rest := body[:len(body)-2]
		i := bytes.LastIndexByte(rest, '"')
		if !bytes.HasSuffix(rest[:i+1], []byte(`,"nextPageToken":"`)) {
			return jobs, pages, size
		}
		q.Set("pageToken", string(rest[i+1:]))
	}
}
