package events

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestFoldTies folds distinct events of one job that tie on everything a
// coarse stamp could hold: the same state, the same millisecond (often the
// same nanosecond), and ids that share the 21 bits a packed stamp would
// keep. Whatever their order and duplicates, they must fold to one Job, and
// to the one the last-writer-wins rule says: each field from the event with
// the greatest (rank, time, id) that knows it.
func TestFoldTies(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 13))
		evs := tiedEvents(r)
		want := lastWriter(key, evs)
		first := Fold(key, evs)
		if diff := gocmp.Diff(want, first, cmpopts.IgnoreUnexported(Job{})); diff != "" {
			t.Fatalf("seed %d: fold differs from the last-writer-wins rule (-rule +fold):\n%s\nevents: %s", seed, diff, describe(evs))
		}
		for perm := range permutations(evs) {
			if diff := diffJobs(first, Fold(key, perm)); diff != "" {
				t.Fatalf("seed %d: order %s folds differently (-first +this):\n%s", seed, describe(perm), diff)
			}
		}
		for range 20 {
			if diff := diffJobs(first, Fold(key, shuffledWithDuplicates(r, evs))); diff != "" {
				t.Fatalf("seed %d: duplicates fold differently (-first +this):\n%s", seed, diff)
			}
		}
	}
}

// TestFoldIsLastWriterWins holds the fold to its rule on events of every
// state and a few distinct times.
func TestFoldIsLastWriterWins(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 17))
		evs := randomEvents(r)
		if diff := gocmp.Diff(lastWriter(key, evs), Fold(key, evs), cmpopts.IgnoreUnexported(Job{})); diff != "" {
			t.Fatalf("seed %d: fold differs from the last-writer-wins rule (-rule +fold):\n%s", seed, diff)
		}
	}
}

// TestFoldIdempotent applies every event again to a folded job.
func TestFoldIdempotent(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 19))
		evs := append(randomEvents(r), tiedEvents(r)...)
		want := Fold(key, evs)
		got := want
		for i := range evs {
			got.Apply(&evs[i])
		}
		if diff := diffJobs(want, got); diff != "" {
			t.Fatalf("seed %d: folding the events again changed the job (-once +twice):\n%s", seed, diff)
		}
	}
}

// TestApplyLeavesCopiesAlone folds different events into two copies of one
// job: each must end as if it had been folded alone.
func TestApplyLeavesCopiesAlone(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 23))
		base, x, y := randomEvents(r), tiedEvents(r), randomEvents(r)
		for i := range y {
			y[i].ID += "-y" // distinct from base's
		}
		a := Fold(key, base)
		b := a
		for i := range x {
			a.Apply(&x[i])
		}
		for i := range y {
			b.Apply(&y[i])
		}
		if diff := diffJobs(Fold(key, slices.Concat(base, x)), a); diff != "" {
			t.Fatalf("seed %d: the first copy (-alone +copy):\n%s", seed, diff)
		}
		if diff := diffJobs(Fold(key, slices.Concat(base, y)), b); diff != "" {
			t.Fatalf("seed %d: the second copy (-alone +copy):\n%s", seed, diff)
		}
	}
}

// TestManyWriters folds events that each write a register of their own, so
// that the job holds more writers than fit in it, in any order and in
// copies of the job that then fold different events.
func TestManyWriters(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 8))
	var evs []Event
	for i, set := range oneFactEach() {
		e := Event{ID: fmt.Sprintf("w%02d", i), Kind: KindProgress, Job: key, Time: at(i % 7), State: StateRunning}
		set(&e)
		evs = append(evs, e)
	}
	want := lastWriter(key, evs)
	for range 50 {
		got := Fold(key, shuffledWithDuplicates(r, evs))
		if diff := gocmp.Diff(want, got, cmpopts.IgnoreUnexported(Job{})); diff != "" {
			t.Fatalf("fold differs from the last-writer-wins rule (-rule +fold):\n%s", diff)
		}
		if got.writers.more == nil {
			t.Fatalf("%d writers fit in the job: the test does not reach the overflow", len(evs))
		}
		a, b := got, got
		x, y := tiedEvents(r), randomEvents(r)
		for i := range x {
			a.Apply(&x[i])
		}
		for i := range y {
			b.Apply(&y[i])
		}
		if diff := diffJobs(Fold(key, slices.Concat(evs, x)), a); diff != "" {
			t.Fatalf("the first copy (-alone +copy):\n%s", diff)
		}
		if diff := diffJobs(Fold(key, slices.Concat(evs, y)), b); diff != "" {
			t.Fatalf("the second copy (-alone +copy):\n%s", diff)
		}
	}
}

// oneFactEach returns functions that each set a different fact.
func oneFactEach() []func(*Event) {
	return []func(*Event){
		func(e *Event) { e.Principal = "a@x" },
		func(e *Event) { e.JobType = JobTypeQuery },
		func(e *Event) { e.StatementType = "SELECT" },
		func(e *Event) { e.Priority = "BATCH" },
		func(e *Event) { e.Query = "SELECT 1" },
		func(e *Event) { e.Labels = map[string]string{"a": "b"} },
		func(e *Event) { e.Reservation = "prod" },
		func(e *Event) { e.ReferencedTables = []string{"p.d.t"} },
		func(e *Event) { e.DestinationTable = "p.d.u" },
		func(e *Event) { e.CreateTime = at(1) },
		func(e *Event) { e.StartTime = at(2) },
		func(e *Event) { e.SlotMs = Int64(5) },
		func(e *Event) { e.CacheHit = Bool(false) },
		func(e *Event) { e.OutputRows = Int64(7) },
		func(e *Event) { e.PendingUnits = Int64(9) },
	}
}

// tiedEvents returns 2 to 5 distinct events of key that report the same
// state within the same millisecond, with ids colliding in packedIDBits,
// and facts that differ.
func tiedEvents(r *rand.Rand) []Event {
	states := []State{StatePending, StateRunning, StateDone, StateUnknown}
	kinds := []Kind{KindInserted, KindStateChanged, KindProgress, KindCompleted, KindReconciled, KindCancelRequested}
	state := states[r.IntN(len(states))]
	ms := at(r.IntN(3)).Add(time.Duration(r.IntN(1000)) * time.Millisecond)
	sameNanos := r.IntN(2) == 0
	ids := tiedIDs(r, 2+r.IntN(4))
	evs := make([]Event, len(ids))
	for i, id := range ids {
		e := Event{ID: id, Kind: kinds[r.IntN(len(kinds))], Job: key, Time: ms, State: state}
		if !sameNanos {
			e.Time = ms.Add(time.Duration(r.IntN(3)) * time.Microsecond)
		}
		randomFacts(r, &e)
		evs[i] = e
	}
	return evs
}

// tiedIDs returns n distinct ids that a stamp of 21 bits of id could not
// tell apart: hex ids sharing the low 21 bits of their first 8 bytes, and
// other ids sharing the 21-bit FNV hash a packed stamp took of them.
func tiedIDs(r *rand.Rand, n int) []string {
	var ids []string
	if r.IntN(4) == 0 {
		ids = append(ids, fnvTwins...)
	}
	var first [16]byte
	for i := range first {
		first[i] = byte(r.Uint32())
	}
	for len(ids) < n {
		var b [16]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if r.IntN(4) > 0 { // collide with the first id's packed bits
			hi := binary.BigEndian.Uint64(b[:8])&^(1<<21-1) | binary.BigEndian.Uint64(first[:8])&(1<<21-1)
			binary.BigEndian.PutUint64(b[:8], hi)
		}
		if id := hex.EncodeToString(b[:]); !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids[:n]
}

// fnvTwins are two ids, not hex, with the same 21-bit FNV-1a hash.
var fnvTwins = func() []string {
	seen := map[uint64]string{}
	for i := 0; ; i++ {
		id := fmt.Sprintf("derived-%d", i)
		h := packedIDBits(id)
		if other, ok := seen[h]; ok {
			return []string{other, id}
		}
		seen[h] = id
	}
}()

// packedIDBits is the part of an event id that a stamp packed into 64 bits
// kept (21 bits): the low bits of a hex id's first 8 bytes, or of the FNV-1a
// hash of any other id.
func packedIDBits(id string) uint64 {
	if b, err := hex.DecodeString(id); err == nil && len(b) >= 8 {
		return binary.BigEndian.Uint64(b) & (1<<21 - 1)
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * 1099511628211
	}
	return h & (1<<21 - 1)
}

func TestTiedIDsCollide(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	collisions := 0
	for range 100 {
		ids := tiedIDs(r, 5)
		for i := range ids {
			for j := range i {
				if ids[i] == ids[j] {
					t.Fatalf("tiedIDs repeated %s", ids[i])
				}
				if packedIDBits(ids[i]) == packedIDBits(ids[j]) {
					collisions++
				}
			}
		}
	}
	if collisions < 300 || packedIDBits(fnvTwins[0]) != packedIDBits(fnvTwins[1]) {
		t.Errorf("%d colliding pairs in 100 draws, FNV twins %v: the ties are not ties", collisions, fnvTwins)
	}
}

// randomFacts sets e's error and facts from small sets of values, so that
// events often disagree.
func randomFacts(r *rand.Rand, e *Event) {
	pick := func(vs ...string) string { return vs[r.IntN(len(vs))] }
	e.Principal = pick("", "a@x", "b@x", "c@x")
	e.Query, e.QueryTruncated = pick("", "SELECT 1", "SELECT 2", "SELECT"), r.IntN(2) == 0
	e.Reservation = pick("", "unreserved", "prod")
	if r.IntN(2) == 0 {
		e.SlotMs = Int64(r.Int64N(3))
	}
	if r.IntN(2) == 0 {
		e.Labels = map[string]string{"team": pick("a", "b"), pick("env", "x"): pick("prod", "dev")}
	}
	if r.IntN(2) == 0 {
		e.ReferencedTables = []string{pick("p.d.t", "p.d.u"), pick("p.d.v", "p.d.w")}
	}
	if r.IntN(2) == 0 {
		e.Error = &JobError{Code: pick("3", "5", "stopped"), Message: pick("x", "y", "xy")}
	}
	if r.IntN(2) == 0 {
		e.CacheHit = Bool(r.IntN(2) == 0)
	}
	e.EndTime = []time.Time{{}, at(1), at(2)}[r.IntN(3)]
}

// lastWriter is the fold's rule written the slow way: events sorted by
// (state rank, time, id), each known value overwriting the one before; a
// complete query text beats a truncated one; first and last seen are the
// extreme times; the flags are set by any event of their kind. It needs
// distinct ids for distinct events.
func lastWriter(key JobKey, evs []Event) Job {
	evs = slices.Clone(evs)
	slices.SortFunc(evs, func(a, b Event) int {
		return cmp.Or(cmp.Compare(a.State.rank(), b.State.rank()), a.Time.Compare(b.Time), strings.Compare(a.ID, b.ID))
	})
	evs = slices.CompactFunc(evs, func(a, b Event) bool { return a.ID == b.ID })
	j := Job{Key: key}
	var truncated, complete *Event
	for i := range evs {
		e := &evs[i]
		if e.State != StateUnknown {
			j.State = e.State
		}
		if e.Error != nil && *e.Error != (JobError{}) {
			j.Error = e.Error
		}
		overwriteKnown(reflect.ValueOf(&j.Facts).Elem(), reflect.ValueOf(&e.Facts).Elem())
		if j.FirstSeen.IsZero() || e.Time.Before(j.FirstSeen) {
			j.FirstSeen = e.Time
		}
		if e.Time.After(j.LastSeen) {
			j.LastSeen = e.Time
		}
		j.CancelRequested = j.CancelRequested || e.Kind == KindCancelRequested
		j.Reconciled = j.Reconciled || e.Kind == KindReconciled
		switch {
		case e.Query == "":
		case e.QueryTruncated:
			truncated = e
		default:
			complete = e
		}
	}
	j.Query, j.QueryTruncated = "", false
	if q := cmp.Or(complete, truncated); q != nil {
		j.Query, j.QueryTruncated = q.Query, q.QueryTruncated
	}
	return j
}

// overwriteKnown sets each field of dst to src's where src's is known (not
// zero, not empty), entering embedded structs.
func overwriteKnown(dst, src reflect.Value) {
	for i := range dst.NumField() {
		d, s := dst.Field(i), src.Field(i)
		switch {
		case dst.Type().Field(i).Anonymous:
			overwriteKnown(d, s)
		case s.Kind() == reflect.Slice || s.Kind() == reflect.Map:
			if s.Len() > 0 {
				d.Set(s)
			}
		case !s.IsZero():
			d.Set(s)
		}
	}
}

// permutations yields every order of evs.
func permutations(evs []Event) func(yield func([]Event) bool) {
	return func(yield func([]Event) bool) {
		var walk func(k int) bool
		p := slices.Clone(evs)
		walk = func(k int) bool {
			if k == len(p) {
				return yield(slices.Clone(p))
			}
			for i := k; i < len(p); i++ {
				p[k], p[i] = p[i], p[k]
				if !walk(k + 1) {
					return false
				}
				p[k], p[i] = p[i], p[k]
			}
			return true
		}
		walk(0)
	}
}

func describe(evs []Event) string {
	var parts []string
	for _, e := range evs {
		parts = append(parts, fmt.Sprintf("%.8s@%s", e.ID, e.Time.Format("05.000000000")))
	}
	return strings.Join(parts, " ")
}
