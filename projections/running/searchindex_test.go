package running

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestIndexKeptUpToDate checks that an index kept up to date job by job
// (add, replace, remove) holds exactly what one built from the final texts
// holds: no word or trigram left behind by a job that changed or left, and
// none missing. The texts come from a four-letter alphabet, so that words
// repeat trigrams ("aaaa", "abab") and jobs share words and trigrams.
func TestIndexKeptUpToDate(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	word := func() string {
		var b strings.Builder
		for range 1 + r.IntN(7) {
			b.WriteByte("abAB"[r.IntN(4)])
		}
		return b.String()
	}
	text := func() searchText {
		var public, query []string
		for range r.IntN(4) {
			public = append(public, strings.ToLower(word()))
		}
		for range r.IntN(4) {
			query = append(query, word())
		}
		st := searchText{public: strings.Join(public, "\x00") + "\x00", query: strings.Join(query, " "), fold: true}
		if r.IntN(3) == 0 { // the query part alone changes
			st.query += " " + word()
		}
		return st
	}
	x := newSearchIndex()
	texts := map[uint32]searchText{}
	for range 20000 {
		changeText(r, x, texts, 300, text)
	}
	stale := 0
	for g, gw := range x.grams {
		if len(gw.words) >= minCompacted && 2*gw.live < len(gw.words) {
			t.Errorf("trigram %x: %d entries, %d of them live: more than half are stale", g, len(gw.words), gw.live)
		}
		stale += len(gw.words) - gw.live
	}
	if stale == 0 {
		t.Fatal("no stale entry is left in any trigram's words: the test exercises too little")
	}
	fresh := newSearchIndex()
	for job, st := range texts {
		fresh.add(job, &st)
	}
	want, got := indexContents(fresh), indexContents(x)
	if len(want) < 50 {
		t.Fatalf("the final index holds %d words and trigrams: the test exercises too little", len(want))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the index kept up to date differs from one built from the final texts (-want +got):\n%s", diff)
	}
	for job, st := range texts {
		x.remove(job, &st)
	}
	if got := indexContents(x); len(got) != 0 {
		t.Errorf("after every job left, the index still holds %v", got)
	}
}

// changeText lists a job of the first n with a new text, takes it out or
// gives it another text (at times only another public part), in x and in
// texts alike.
func changeText(r *rand.Rand, x *searchIndex, texts map[uint32]searchText, n int, text func() searchText) {
	job := uint32(r.IntN(n))
	was, listed := texts[job]
	switch {
	case !listed:
		st := text()
		x.add(job, &st)
		texts[job] = st
	case r.IntN(3) == 0:
		x.remove(job, &was)
		delete(texts, job)
	default:
		st := text()
		if r.IntN(2) == 0 { // only the public part changes
			st.query, st.fold = was.query, was.fold
		}
		x.replace(job, &was, &st)
		texts[job] = st
	}
}

// TestRememberedTermsMatchTheTexts checks the jobs the index finds for
// terms searched again and again, while jobs come, change and go, against
// the jobs whose texts hold them: the terms' remembered words must follow
// every word added, every word gone and every compaction. The words share
// the trigrams of "market", so that the terms' trigram lists are long
// enough to be remembered, and churn, so that they are compacted.
func TestRememberedTermsMatchTheTexts(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	stems := []string{"market", "smart", "mart", "marts", "kart", "arke"}
	word := func() string { return stems[r.IntN(len(stems))] + strconv.Itoa(r.IntN(2000)) }
	text := func() searchText {
		var ws []string
		for range 1 + r.IntN(4) {
			ws = append(ws, word())
		}
		return searchText{public: strings.Join(ws, "\x00") + "\x00"}
	}
	terms := []string{"mar", "mart", "marts", "arke", "market1", "smart19", "art", "kart7"}
	x := newSearchIndex()
	texts := map[uint32]searchText{}
	remembered, compacted := 0, uint64(0)
	for op := range 60000 {
		changeText(r, x, texts, 3000, text)
		if op%500 != 0 {
			continue
		}
		for _, term := range terms {
			want := make([]uint64, 3000/64+1)
			for job, st := range texts {
				if strings.Contains(st.public, term) {
					want[job>>6] |= 1 << (job & 63)
				}
			}
			// Lookups run side by side under the store's read lock, as
			// list requests do; -race checks the cache's own lock.
			var wg sync.WaitGroup
			for range 3 {
				wg.Go(func() {
					got := make([]uint64, len(want))
					x.jobsWith(term, got)
					if !slices.Equal(got, want) {
						t.Errorf("after %d changes, the index finds other jobs for %q than hold it", op, term)
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
		}
		remembered = max(remembered, len(x.terms.terms))
		for term, tw := range x.terms.terms {
			compacted = max(compacted, tw.list.compacted)
			if len(slices.Compact(slices.Sorted(slices.Values(tw.words)))) != len(tw.words) {
				t.Fatalf("after %d changes, the words remembered for %q repeat", op, term)
			}
		}
	}
	if remembered < 3 || compacted == 0 {
		t.Fatalf("the cache remembered at most %d terms and saw %d compactions: the test exercises too little", remembered, compacted)
	}
}
