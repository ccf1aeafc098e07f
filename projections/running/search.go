package running

import (
	"math/bits"
	"sync"
)

// textSearch is one request's search, resolved against the store's index.
type textSearch struct {
	terms   []string  // every term; none when the request does not search
	hits    *[]uint64 // by job id: the jobs whose text holds every indexable term (or every job when none is) that the postings leave; nil when neither narrows
	rest    []string  // the terms the index cannot answer, tested on each job's text
	restSig signature // the byte pairs of rest
	sel     *[]uint64 // by slot: the slots to scan, when slots chose them
}

// searchFor resolves the search of m: the index answers for the terms it
// can, and the others are left to test on each job. s.mu is held.
func (s *store) searchFor(m *matcher) textSearch {
	ts := textSearch{terms: m.terms}
	var indexed []string
	for _, t := range m.terms {
		if s.index != nil && indexable(t) {
			indexed = append(indexed, t)
			continue
		}
		ts.rest = append(ts.rest, t)
		ts.restSig.addPairs(t)
	}
	if len(indexed) == 0 {
		if s.index != nil && m.narrowed() {
			// No term the index answers, but the postings name the
			// candidates: the scan may read only theirs (slots).
			ts.hits = s.listedIDs()
			s.posts.narrow(m, *ts.hits)
		}
		return ts
	}
	n := s.ids.words()
	ts.hits = takeBits(n)
	s.index.jobsWith(indexed[0], *ts.hits)
	if len(indexed) > 1 {
		more := takeBits(n)
		defer bitsPool.Put(more)
		for _, t := range indexed[1:] {
			clear(*more)
			s.index.jobsWith(t, *more)
			for i, w := range *more {
				(*ts.hits)[i] &= w
			}
		}
	}
	s.posts.narrow(m, *ts.hits)
	return ts
}

// listedIDs returns every listed job as a bitset by job id, from the
// postings of the states. s.mu is held; the caller gives the bitset back
// to bitsPool.
func (s *store) listedIDs() *[]uint64 {
	b := takeBits(s.ids.words())
	for st := range s.posts.states {
		for k, w := range s.posts.states[st].w[:min(len(s.posts.states[st].w), len(*b))] {
			(*b)[k] |= w
		}
	}
	return b
}

// match reports whether the job in slot i of st, whose row is r, holds
// every term where the caller of m may search.
func (ts *textSearch) match(m *matcher, st *store, i int, r *row) bool {
	if len(ts.terms) == 0 {
		return true
	}
	if ts.hits != nil && (*ts.hits)[r.id>>6]&(1<<(r.id&63)) == 0 {
		return false
	}
	if m.hidesFor(r.dim[dimUser]) {
		// The index answered for the whole text, and the caller searches
		// only its public part.
		return m.matchTerms(&st.slots[i].a, ts.terms)
	}
	return len(ts.rest) == 0 || st.sigs[i].covers(&ts.restSig) && m.matchTerms(&st.slots[i].a, ts.rest)
}

// slots returns the slots of st to scan for ts: nil for every slot, or,
// when the index answered and fewer than a third of the listed jobs hold
// its terms and pass the request's conditions on the postings, a bitset
// over slot numbers of those jobs, so that a search
// reads only the rows of the jobs it can match, in slot order. Past a
// third, reading every row in order costs less than finding the hits'
// slots (BenchmarkList). The scan tests every job it reads as it would
// otherwise, so the page is the same either way. st.mu is held; release
// gives the bitset back.
func (ts *textSearch) slots(st *store) []uint64 {
	if ts.hits == nil {
		return nil
	}
	n := 0
	for _, w := range *ts.hits {
		n += bits.OnesCount64(w)
	}
	if 3*n > len(st.rows) {
		return nil
	}
	ts.sel = takeBits((len(st.rows) + 63) / 64)
	sel := *ts.sel
	for k, w := range *ts.hits {
		for ; w != 0; w &= w - 1 {
			id := k<<6 | bits.TrailingZeros64(w)
			if id < len(st.slotOf) {
				if i := st.slotOf[id]; i >= 0 {
					sel[i>>6] |= 1 << (i & 63)
				}
			}
		}
	}
	return sel
}

// release gives back the request's bitset.
func (ts *textSearch) release() {
	if ts.hits != nil {
		bitsPool.Put(ts.hits)
		ts.hits = nil
	}
	if ts.sel != nil {
		bitsPool.Put(ts.sel)
		ts.sel = nil
	}
}

// bitsPool holds bitsets of job ids, so that searches allocate little.
var bitsPool = sync.Pool{New: func() any { return new([]uint64) }}

// takeBits returns a clear bitset of n words.
func takeBits(n int) *[]uint64 {
	b := bitsPool.Get().(*[]uint64)
	if cap(*b) < n {
		*b = make([]uint64, n)
	}
	*b = (*b)[:n]
	clear(*b)
	return b
}
