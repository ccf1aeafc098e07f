package enrich_test

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/enrich"
	"github.com/bqobserver/bqobserver/enrich/jobsapi"
	"github.com/bqobserver/bqobserver/enrich/lease"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
)

// recorder counts a replica's jobs.list calls by project.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	list map[string]int
}

var listPath = regexp.MustCompile(`/projects/([^/]+)/jobs$`)

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if m := listPath.FindStringSubmatch(req.URL.Path); m != nil {
		r.mu.Lock()
		r.list[m[1]]++
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

// take returns the calls recorded since the last take.
func (r *recorder) take() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.list
	r.list = map[string]int{}
	return out
}

// replica is one replica's enrichment, with its leases and its calls.
type replica struct {
	name   string
	leases *lease.Leases
	enr    *enrich.Enricher
	calls  *recorder
}

// TestThreeReplicas runs three replicas' enrichment on one table, each
// with its leases, in rounds a quarter of a lease apart: each refreshes
// its leases and polls once. In every round no project is listed by two
// replicas, and the three together make one call per active project, as
// one replica does. Then the replica holding the most leases dies: its
// projects are listed again within two lease periods.
func TestThreeReplicas(t *testing.T) {
	for _, b := range []struct {
		name string
		open func(t *testing.T) *logtest.Bigtable
	}{
		{"bttest", func(t *testing.T) *logtest.Bigtable { return logtest.NewBttest(t) }},
		{"emulator", func(t *testing.T) *logtest.Bigtable { return logtest.NewEmulator(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			w := newWorldOn(t, busyOrg(31), b.open(t))
			warm(w, w.enricher(enrich.Config{Interval: interval}, enrich.Deps{}), 6)
			rs := makeReplicas(t, w, 3)
			const round = lease.DefaultDuration / 4
			step := func(live []*replica) map[string][]string {
				w.step(round)
				for _, r := range live {
					if err := r.leases.Refresh(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
				by := map[string][]string{}
				for _, r := range live {
					r.enr.Cycle(t.Context())
					for p, n := range r.calls.take() {
						for range n {
							by[p] = append(by[p], r.name)
						}
					}
				}
				return by
			}
			for i := range 6 { // the replicas find each other and share (the excess lapses)
				by := step(rs)
				if i < 5 {
					continue
				}
				active := w.proj.OpenJobs(func(string) bool { return true })
				for p, names := range by {
					if len(names) != 1 {
						t.Errorf("project %s was listed by %v in one round", p, names)
					}
				}
				if len(by) != len(active) {
					t.Errorf("three replicas listed %d projects in a round; %d have open jobs", len(by), len(active))
				}
			}
			dead := slices.MaxFunc(rs, func(a, b *replica) int { return a.leases.Held() - b.leases.Held() })
			var orphans []string
			for p := range w.proj.OpenJobs(dead.leases.Owns) {
				orphans = append(orphans, p)
			}
			if len(orphans) == 0 {
				t.Fatal("the dying replica polls nothing")
			}
			live := slices.DeleteFunc(slices.Clone(rs), func(r *replica) bool { return r == dead })
			killed := w.org.Now()
			polledAgain := map[string]time.Duration{}
			for w.org.Now().Sub(killed) < 2*lease.DefaultDuration {
				by := step(live)
				for p, names := range by {
					if len(names) != 1 {
						t.Errorf("project %s was listed by %v in one round", p, names)
					}
					if _, ok := polledAgain[p]; !ok {
						polledAgain[p] = w.org.Now().Sub(killed)
					}
				}
			}
			var after []time.Duration
			for _, p := range orphans {
				d, ok := polledAgain[p]
				if !ok && len(w.proj.OpenJobs(func(q string) bool { return q == p })) > 0 {
					t.Errorf("project %s of the dead replica was not listed again within %s", p, 2*lease.DefaultDuration)
				}
				after = append(after, d)
			}
			t.Logf("%d projects of the dead replica listed again after %v", len(orphans), slices.Max(after))
		})
	}
}

func makeReplicas(t *testing.T, w *world, n int) []*replica {
	t.Helper()
	var rs []*replica
	for i := range n {
		r := &replica{name: fmt.Sprintf("r%d", i), calls: &recorder{next: http.DefaultTransport, list: map[string]int{}}}
		l, err := lease.New(w.bt.Client, lease.Config{Table: w.bt.Table, Holder: r.name, Now: w.org.Now})
		if err != nil {
			t.Fatal(err)
		}
		r.leases = l
		r.enr = w.enricher(enrich.Config{Interval: interval}, enrich.Deps{Leases: l, API: w.client(jobsapi.Config{}, r.calls)})
		rs = append(rs, r)
	}
	return rs
}
