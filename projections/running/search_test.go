package running

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/projections/access"
)

// oldSearchText is the search text as one lower-cased string, the public
// part first: what a term is defined to be searched in.
func oldSearchText(st *searchText) string {
	return st.public + strings.ToLower(st.query)
}

// textPieces are what the random texts are made of: words of the list's
// users, case variants, characters whose lower case differs in length or
// is ASCII (İ, the Kelvin sign), separators, a NUL and an invalid byte.
var textPieces = []string{
	"marts", "Marts", "MARTS", "reporting", "agg_daily_", "SELECT", "select", "from", "fct_orders", "orders",
	"a", "ab", "abc", "abcd", "x", "_", "-", ".", "=", " ", "\n", "`", "é", "É", "İstanbul", "straße", "\u212a", "ǅ",
	"日本", "0", "42", "4242", "\x00", "\xff", "team", "prod", "run-42",
}

func randomText(r *rand.Rand, pieces int) string {
	var b strings.Builder
	for range r.IntN(pieces + 1) {
		b.WriteString(textPieces[r.IntN(len(textPieces))])
	}
	return b.String()
}

// asciiText is randomText without the non-ASCII pieces.
func asciiText(r *rand.Rand, pieces int) string {
	var b strings.Builder
	for b.Len() == 0 && pieces > 0 || r.IntN(pieces+1) > 0 {
		if p := textPieces[r.IntN(len(textPieces))]; isASCII(p) {
			b.WriteString(p)
		}
		if b.Len() > 8*pieces {
			break
		}
	}
	return b.String()
}

// randomTerm returns a lower-cased term: a piece of text, a piece of a
// given text (which may cross a field separator or the start of the query
// text), or the end of one field joined to the start of the next.
func randomTerm(r *rand.Rand, texts []string) string {
	switch r.IntN(4) {
	case 0:
		return strings.ToLower(randomText(r, 3))
	case 1:
		t := texts[r.IntN(len(texts))]
		if t == "" {
			return "x"
		}
		i := r.IntN(len(t))
		return t[i : i+min(len(t)-i, 1+r.IntN(12))]
	case 2:
		t := texts[r.IntN(len(texts))]
		if i := strings.IndexByte(t, 0); i > 0 && i+1 < len(t) {
			return t[max(0, i-3):i] + t[i+1:min(len(t), i+4)] // both sides of a separator, without it
		}
		return "ab"
	}
	return strings.ToLower(textPieces[r.IntN(len(textPieces))])
}

func TestIndexFold(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct{ s, t string }{
		{"", ""}, {"abc", ""}, {"", "a"}, {"SELECT x", "select"}, {"xSeLeCt", "select"}, {"Sum(s)", "s)"},
		{"aAaAb", "aab"}, {"ABC", "abcd"}, {"`P.MARTS.x`", "marts.x"}, {"a-b", "a-b"}, {"X", "é"},
	}
	for range 20000 {
		cases = append(cases, struct{ s, t string }{asciiText(r, 12), strings.ToLower(asciiText(r, 2))})
	}
	for _, c := range cases {
		if got, want := indexFold(c.s, c.t), strings.Index(strings.ToLower(c.s), c.t); got != want {
			t.Errorf("indexFold(%q, %q) = %d, want %d", c.s, c.t, got, want)
		}
	}
}

func randomFacts(r *rand.Rand) events.Facts {
	f := events.Facts{Principal: strings.ToLower(randomText(r, 2)) + "@acme.example", Query: randomText(r, 8)}
	if r.IntN(2) == 0 {
		f.Query = asciiText(r, 8)
	}
	if r.IntN(3) > 0 {
		f.DestinationTable = randomText(r, 3)
		f.ReferencedTables = []string{randomText(r, 3), asciiText(r, 3)}
		f.Labels = map[string]string{randomText(r, 1): randomText(r, 2), "team": []string{"prod", "dev", asciiText(r, 2)}[r.IntN(3)]}
	}
	f.JobType = []string{events.JobTypeQuery, events.JobTypeQuery, events.JobTypeLoad, ""}[r.IntN(4)]
	return f
}

func TestSearchTextMatchesItsWholeText(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		f := randomFacts(r)
		j := events.Job{Key: events.JobKey{Project: "p", Location: "US", JobID: randomText(r, 3) + "j"}, Facts: f}
		st := searchTextOf(&j)
		whole := oldSearchText(&st)
		if got, want := signatureOf(&st), signatureOfString(whole); got != want {
			t.Fatalf("signature of %q differs from that of the whole text", whole)
		}
		for range 20 {
			term := randomTerm(r, []string{whole})
			if got, want := st.contains(term, false), strings.Contains(whole, term); got != want {
				t.Errorf("contains(%q) in %q = %t, want %t", term, whole, got, want)
			}
			if got, want := st.contains(term, true), strings.Contains(st.public, term); got != want {
				t.Errorf("contains(%q) in the public part %q = %t, want %t", term, st.public, got, want)
			}
		}
	}
}

func signatureOfString(s string) signature {
	var sig signature
	sig.addPairs(s)
	return sig
}

// The list of a store that indexes its jobs' texts and ranks them answers
// every request, page by page, exactly as a plain scan of the same jobs
// does, while jobs are listed, changed and removed: first while it is quiet
// and has no index, then from the index it builds of every job at once when
// it stops being quiet, then as the index follows the changes.
func TestIndexedListMatchesScan(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	now := t0.Add(time.Hour)
	live, plain, apply := storePair(now)
	var keys []events.JobKey
	callers := []access.Principal{
		access.Anonymous(),
		{Email: "ab@acme.example", Role: access.RoleViewer, Method: access.ModeIAP},
		{Email: "x@acme.example", Role: access.RoleViewer, Method: access.ModeIAP},
	}
	for round := range 40 {
		for range 60 {
			keys = changeJobs(r, keys, apply, now)
		}
		if round == 5 {
			if live.index != nil || live.ranking != nil {
				t.Fatal("a quiet store indexes its jobs")
			}
			live.setQuiet(false)
			if !live.posts.sparseOn {
				t.Fatal("the store keeps no sets of the dimensions of many values")
			}
		}
		if got, want := live.len(), plain.len(); got != want {
			t.Fatalf("round %d: %d jobs listed, want %d", round, got, want)
		}
		checkPostings(t, live)
		texts := make([]string, 0, len(live.slots))
		for i := range live.slots {
			texts = append(texts, oldSearchText(&live.slots[i].a.text))
		}
		for range 30 {
			v := randomListParams(r, texts)
			caller := callers[r.IntN(len(callers))]
			got, want := listAll(t, live, v, caller, now), listAll(t, plain, v, caller, now)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("round %d, %s as %s: indexed list differs from the scan (-want +got):\n%s", round, v.Encode(), caller.Email, diff)
			}
		}
	}
	live.awaitIndex()
	if len(live.index.ids) == 0 {
		t.Fatal("the index holds no word: the test exercised nothing")
	}
}

// An index built outside the lock from the texts of one moment, while jobs
// are listed, changed and removed (their ids freed and taken again), is
// brought up to date when it is put in place: it then holds what an index
// built from the texts of that later moment holds.
func TestIndexBuiltWhileJobsChange(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	now := t0.Add(time.Hour)
	var cfg Config
	cfg.setDefaults()
	for round, changes := range []int{0, 1, 10, 300, 3000} {
		s := newLiveStore(cfg, newRing(16))
		var keys []events.JobKey
		apply := func(key events.JobKey, evs ...events.Event) { s.applyHistory(key, evs, now) }
		for range 1500 {
			keys = changeJobs(r, keys, apply, now)
		}
		s.mu.Lock()
		s.quiet = false
		b := s.startIndex()
		s.mu.Unlock()
		reused := 0
		copied := map[uint32]bool{}
		for _, jt := range b.texts {
			copied[jt.id] = true
		}
		for range changes {
			n := len(s.slots)
			keys = changeJobs(r, keys, apply, now)
			if len(s.slots) > n && copied[s.slots[n].id] {
				reused++
			}
		}
		for i := 0; i < changes/10 && len(keys) > 0; i++ { // ids freed and not taken again
			k := keys[len(keys)-1]
			apply(k, (&story{key: k, n: 2_000_000 + i}).completed(now))
			keys = keys[:len(keys)-1]
		}
		if s.index != nil {
			t.Fatalf("round %d: the index is in place before it is built", round)
		}
		noted := len(b.changed)
		s.finishIndex(b, b.build())
		want, got := indexContents(indexAll(jobTexts(s.slots), 1)), indexContents(s.index)
		if len(want) < 100 {
			t.Fatalf("round %d: %d words and trigrams indexed: the test exercises too little", round, len(want))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("round %d, %d changes: the index differs from one built from the texts at its end (-want +got):\n%s", round, changes, diff)
		}
		if changes >= 300 && (noted < changes/2 || reused == 0) {
			t.Errorf("round %d: %d changes noted, %d ids taken again: the test exercises too little", round, noted, reused)
		}
		s.awaitIndex() // done: returns at once
	}
}

// checkPostings checks that st's postings hold, for each posted dimension's
// values and each state, exactly the ids of the listed jobs with it, and no
// value no listed job has.
func checkPostings(t *testing.T, st *store) {
	t.Helper()
	type key struct {
		dim   int // -1 for the state
		value uint32
	}
	want := map[key][]uint32{}
	for _, r := range st.rows {
		dims := postedDims[:]
		if st.posts.sparseOn {
			dims = append(dims, sparseDims[:]...)
		}
		for _, d := range dims {
			want[key{d, r.dim[d]}] = append(want[key{d, r.dim[d]}], r.id)
		}
		want[key{-1, uint32(r.state)}] = append(want[key{-1, uint32(r.state)}], r.id)
	}
	ids := func(b *idBits) []uint32 {
		var out []uint32
		for k, w := range b.w {
			for ; w != 0; w &= w - 1 {
				out = append(out, uint32(k<<6|bits.TrailingZeros64(w)))
			}
		}
		if len(out) != b.n {
			t.Errorf("a posting counts %d jobs and holds %d", b.n, len(out))
		}
		return out
	}
	got := map[key][]uint32{}
	for i, d := range postedDims {
		for v, b := range st.posts.dims[i] {
			got[key{d, v}] = ids(b)
		}
	}
	for i, d := range sparseDims {
		for v, set := range st.posts.sparse[i] {
			var out []uint32
			set.each(func(id uint32) { out = append(out, id) })
			if len(out) != set.len() || len(out) == 0 {
				t.Errorf("a set of %d jobs holds %d", set.len(), len(out))
			}
			got[key{d, v}] = out
		}
	}
	for c := range st.posts.states {
		if b := &st.posts.states[c]; b.n > 0 || len(ids(b)) > 0 {
			got[key{-1, uint32(c)}] = ids(b)
		}
	}
	for k := range want {
		slices.Sort(want[k])
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(key{})); diff != "" {
		t.Fatalf("postings differ from the rows (-rows +postings):\n%s", diff)
	}
}

// storePair returns a live store and a plain one, with the function that
// applies a job's events to both at now.
func storePair(now time.Time) (live, plain *store, apply func(events.JobKey, ...events.Event)) {
	var cfg Config
	cfg.setDefaults()
	live, plain = newLiveStore(cfg, newRing(16)), newStore(cfg, nil)
	apply = func(key events.JobKey, evs ...events.Event) {
		for _, s := range []*store{live, plain} {
			s.applyHistory(key, evs, now)
		}
	}
	return live, plain, apply
}

// changeJobs lists a new job, changes a listed one (its query text, its
// statistics) or finishes one, in both stores through apply.
func changeJobs(r *rand.Rand, keys []events.JobKey, apply func(events.JobKey, ...events.Event), now time.Time) []events.JobKey {
	projects := []string{"ab", "ab-c", "abc", "a", "b"}
	switch op := r.IntN(10); {
	case op < 5 || len(keys) < 10:
		key := events.JobKey{Project: projects[r.IntN(len(projects))], Location: []string{"US", "EU"}[r.IntN(2)], JobID: fmt.Sprintf("j%d_%s", r.IntN(1000), randomText(r, 1))}
		if key.Validate() != nil {
			return keys
		}
		s := &story{key: key}
		state := []events.State{events.StatePending, events.StateRunning}[r.IntN(2)]
		apply(key, s.inserted(now.Add(-time.Duration(r.IntN(3600))*time.Second), state, randomFacts(r)))
		return append(keys, key)
	case op < 6:
		k := keys[r.IntN(len(keys))]
		s := &story{key: k, n: 100 + r.IntN(1_000_000)}
		apply(k, s.event(events.KindProgress, now.Add(-time.Duration(r.IntN(60))*time.Second), events.StateRunning, events.Facts{Query: randomText(r, 6)}))
	case op < 7: // new tables and labels, the same query text
		k := keys[r.IntN(len(keys))]
		s := &story{key: k, n: 100 + r.IntN(1_000_000)}
		f := events.Facts{ReferencedTables: []string{randomText(r, 3)}, Labels: map[string]string{"team": asciiText(r, 2), randomText(r, 1): "x"}}
		apply(k, s.event(events.KindProgress, now.Add(-time.Duration(r.IntN(60))*time.Second), events.StateRunning, f))
	case op < 9:
		k := keys[r.IntN(len(keys))]
		s := &story{key: k, n: 100 + r.IntN(1_000_000)}
		apply(k, s.progress(now.Add(-time.Duration(r.IntN(60))*time.Second), int64(r.IntN(3))*1000, int64(r.IntN(5))))
	default:
		i := r.IntN(len(keys))
		s := &story{key: keys[i], n: 100 + r.IntN(1_000_000)}
		apply(keys[i], s.completed(now))
		keys = slices.Delete(keys, i, i+1)
	}
	return keys
}

func randomListParams(r *rand.Rand, texts []string) url.Values {
	v := url.Values{}
	var terms []string
	for range r.IntN(3) + 1 {
		if term := randomTerm(r, texts); strings.TrimSpace(term) != "" {
			terms = append(terms, term)
		}
	}
	if r.IntN(8) > 0 {
		v.Set("q", strings.Join(terms, " "))
	}
	v.Set("sort", []string{"running", "-running", "slot_ms", "-slot_ms", "created", "-started", "bytes"}[r.IntN(7)])
	v.Set("limit", fmt.Sprint(1+r.IntN(7)))
	for name, value := range map[string]string{"location": "US", "project": "ab", "state": "running", "label": "team=prod", "min_running": "20m", "type": "query"} {
		if r.IntN(5) == 0 {
			v.Set(name, value)
		}
	}
	return v
}

// listAll returns every page of a list request to st.
func listAll(t *testing.T, st *store, v url.Values, caller access.Principal, now time.Time) []string {
	t.Helper()
	var pages []string
	for {
		q, bad := parseListQuery(v, runningKind)
		if len(bad) > 0 {
			t.Fatalf("%s: %v", v.Encode(), bad)
		}
		q.filter.scope = access.ScopeOf(caller)
		pg := st.list(&q, now, 64, nil)
		pages = append(pages, fmt.Sprintf("%d jobs of %d: %s", pg.n, pg.total, pg.jobs))
		if pg.next == nil || len(pages) > 100 {
			return pages
		}
		v = cloneValues(v)
		v.Set("cursor", pg.next.String())
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// Cutting the texts into words with several workers builds the same index
// as one worker does: every word with the same jobs, every trigram with the
// same words.
func TestIndexAllWorkers(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	now := t0.Add(time.Hour)
	var cfg Config
	cfg.setDefaults()
	s := newStore(cfg, nil)
	var keys []events.JobKey
	apply := func(key events.JobKey, evs ...events.Event) { s.applyHistory(key, evs, now) }
	for range 1500 {
		keys = changeJobs(r, keys, apply, now)
	}
	want := indexContents(indexAll(jobTexts(s.slots), 1))
	if len(want) < 100 {
		t.Fatalf("%d words and trigrams indexed from %d jobs: the test exercises too little", len(want), len(s.slots))
	}
	for _, workers := range []int{2, 3, 7, len(s.slots) + 1} {
		if diff := cmp.Diff(want, indexContents(indexAll(jobTexts(s.slots), workers))); diff != "" {
			t.Errorf("%d workers: the index differs from one worker's (-want +got):\n%s", workers, diff)
		}
	}
}

// indexContents returns what x holds, independent of its word ids: each
// word's jobs ("w:" and the word), each trigram's words ("g:" and the
// trigram's code) and whether the trigram's count of live entries is right
// ("live:").
func indexContents(x *searchIndex) map[string][]string {
	out := map[string][]string{}
	for w, id := range x.ids {
		var jobs []string
		x.words[id].jobs.each(func(j uint32) { jobs = append(jobs, fmt.Sprint(j)) })
		out["w:"+w] = jobs
	}
	for g, gw := range x.grams {
		var words []string
		for _, r := range gw.words {
			if id, stale := x.word(r); !stale {
				w := x.words[id].text
				if !hasTrigram(w, g) {
					w += " (without the trigram)"
				}
				words = append(words, w)
			}
		}
		slices.Sort(words)
		out[fmt.Sprint("g:", g)] = words
		// The count of live entries is what compaction and lookups rely on.
		out[fmt.Sprint("live:", g)] = []string{fmt.Sprint(gw.live == len(words))}
	}
	return out
}

// hasTrigram reports whether s holds the trigram g.
func hasTrigram(s string, g uint32) bool {
	a, b, c := byte(g>>16), byte(g>>8), byte(g)
	for i := 0; i+minIndexed <= len(s); i++ {
		if s[i] == a && s[i+1] == b && s[i+2] == c {
			return true
		}
	}
	return false
}
