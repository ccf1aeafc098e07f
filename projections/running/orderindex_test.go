package running

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/projections/access"
)

// exactListParams returns a request whose matches the postings and the
// search index name exactly (exactMatches): conditions on the location,
// the type, the state, the project, the user (one of users), the
// reservation and the statement type, and terms the index answers, in any
// order.
func exactListParams(r *rand.Rand, users []string) url.Values {
	v := url.Values{}
	names := []string{"running", "created", "started", "slot_ms", "bytes"}
	v.Set("sort", []string{"", "-"}[r.IntN(2)]+names[r.IntN(len(names))])
	v.Set("limit", fmt.Sprint(1+r.IntN(7)))
	for _, c := range []struct {
		name   string
		values []string
		odds   int // one request in odds has it
	}{
		{"location", []string{"US", "EU", "asia-northeast1"}, 3},
		{"type", []string{"query"}, 3},
		{"state", []string{"running", "pending"}, 3},
		{"q", []string{"marts", "orders", "reporting select", "team"}, 3},
		{"project", []string{"ab", "ab-c", "a"}, 8},
		{"user", users, 12},
		// No job has one: nothing matches.
		{"reservation", []string{"batch"}, 30},
		{"statement_type", []string{"SELECT"}, 30},
	} {
		if len(c.values) > 0 && r.IntN(c.odds) == 0 {
			v.Set(c.name, c.values[r.IntN(len(c.values))])
		}
	}
	return v
}

// own returns a caller who sees only the jobs that ran as email.
func own(email string) access.Principal {
	return access.Principal{Email: email, Role: access.RoleOwn, Method: access.ModeIAP}
}

// How a page is found (list).
type way int

const (
	byScan    way = iota // testing every job, or every hit of the search
	byMatches            // offering every match, known from the postings
	byWalk               // walking an order index
)

// wayOf returns how st finds the first page of v.
func wayOf(t *testing.T, st *store, v url.Values, caller access.Principal, now time.Time) way {
	t.Helper()
	q, bad := parseListQuery(v, runningKind)
	if len(bad) > 0 {
		t.Fatalf("%s: %v", v.Encode(), bad)
	}
	q.filter.scope = access.ScopeOf(caller)
	st.mu.RLock()
	defer st.mu.RUnlock()
	m := q.filter.resolve(&st.dicts, now)
	search := st.searchFor(&m)
	defer search.release()
	matches, release := st.exactMatches(&q, &m, &search)
	if matches == nil {
		return byScan
	}
	defer release()
	n := 0
	for _, w := range matches {
		n += bits.OnesCount64(w)
	}
	if st.orderToWalk(&q, n) == nil {
		return byMatches
	}
	return byWalk
}

// Pages answered from the order indexes are the pages of a scan, in every
// order and from every cursor, while jobs are listed, changed and finished
// between the pages and while the indexes are copied (-race), with the
// indexes' copies current or many changes behind.
func TestOrderIndexMatchesScan(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	now := t0.Add(time.Hour)
	live, plain, apply := storePair(now)
	live.orderBuilds.min = 1 // copied again after a few changes
	var keys []events.JobKey
	admin := access.Principal{Email: "ab@acme.example", Role: access.RoleAdmin, ShowQueries: true, Method: access.ModeIAP}
	viewer := access.Principal{Email: "x@acme.example", Role: access.RoleViewer, Method: access.ModeIAP}
	var ways [byWalk + 1]int
	dirty := 0
	for round := range 25 {
		for range 40 {
			keys = changeJobs(r, keys, apply, now)
		}
		if round == 2 {
			live.setQuiet(false)
			live.awaitIndex()
		}
		for range 30 {
			v := exactListParams(r, someUsers(r, live))
			caller := admin
			switch r.IntN(8) {
			case 0:
				caller = viewer // who may not search others' query text: a scan when searching
			case 1:
				caller = own(someUsers(r, live)[0]) // who sees only its own jobs
			}
			if r.IntN(4) == 0 {
				live.awaitOrders()
			}
			w := wayOf(t, live, v, caller, now)
			got, want := listAll(t, live, v, caller, now), listAll(t, plain, v, caller, now)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("round %d, %s as %s (way %d): the list differs from the scan (-want +got):\n%s", round, v.Encode(), caller.Email, w, diff)
			}
			ways[w]++
			if w == byWalk && live.dirtyIn(v) {
				dirty++
			}
			if r.IntN(3) == 0 {
				keys = changeJobs(r, keys, apply, now)
			}
		}
	}
	live.awaitOrders()
	t.Logf("requests answered by a scan, from their matches, by a walk: %v (%d walks with dirty jobs)", ways, dirty)
	if ways[byScan] < 30 || ways[byMatches] < 100 || ways[byWalk] < 200 || dirty < 100 {
		t.Fatalf("requests answered by a scan, from their matches, by a walk: %v (%d walks with dirty jobs): the test exercised too little", ways, dirty)
	}
}

// someUsers returns a few of the users of st's listed jobs.
func someUsers(r *rand.Rand, st *store) []string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	var users []string
	for range min(len(st.rows), 5) {
		users = append(users, st.dicts[dimUser].name(st.rows[r.IntN(len(st.rows))].dim[dimUser]))
	}
	return users
}

// dirtyIn reports whether the order index of v's sort has dirty jobs.
func (s *store) dirtyIn(v url.Values) bool {
	q, _ := parseListQuery(v, runningKind)
	s.mu.RLock()
	defer s.mu.RUnlock()
	x := s.orders[q.order.slot()]
	return x != nil && x.dirty.n > 0
}

// A copy of an order index made while jobs are listed, changed and
// finished (before its values are read, and after) answers every page as
// a scan does once it is in place.
func TestOrderCopiedWhileJobsChange(t *testing.T) {
	now := t0.Add(time.Hour)
	admin := access.Principal{Email: "ab@acme.example", Role: access.RoleAdmin, ShowQueries: true, Method: access.ModeIAP}
	walks := 0
	for round, changes := range []int{0, 1, 10, 300} {
		r := rand.New(rand.NewPCG(13, uint64(round)))
		live, plain, apply := storePair(now)
		var keys []events.JobKey
		for range 600 {
			keys = changeJobs(r, keys, apply, now)
		}
		live.setQuiet(false)
		live.awaitIndex()
		for k := range numOrders {
			o := orderOfSlot(k)
			if o.key == sortEnded {
				continue // not a sort of the running list
			}
			x, next := live.startOrderCopy(o)
			for range changes / 2 {
				keys = changeJobs(r, keys, apply, now)
			}
			live.copyOrder(o, next)
			for range changes - changes/2 {
				keys = changeJobs(r, keys, apply, now)
			}
			live.finishOrderCopy(x, next)
			if changes >= 10 && x.dirty.n == 0 {
				t.Fatalf("round %d, %s: %d changes, no job dirty", round, o, changes)
			}
			for range 20 {
				v := exactListParams(r, someUsers(r, live))
				v.Set("sort", o.String())
				v.Set("limit", "1")
				if w := wayOf(t, live, v, admin, now); w == byWalk {
					walks++
				}
				got, want := listAll(t, live, v, admin, now), listAll(t, plain, v, admin, now)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("round %d, %s: the list differs from the scan (-want +got):\n%s", round, v.Encode(), diff)
				}
			}
		}
	}
	if walks < 200 {
		t.Fatalf("%d pages walked an order index: the test exercised too little", walks)
	}
}
