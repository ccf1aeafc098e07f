package running

import "sync"

// textSearch is one request's search, resolved against the store's index.
type textSearch struct {
	terms   []string  // every term; none when the request does not search
	hits    *[]uint64 // by job id: the jobs whose text holds every indexable term; nil when none is
	rest    []string  // the terms the index cannot answer, tested on each job's text
	restSig signature // the byte pairs of rest
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
	return ts
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

// release gives back the request's bitset.
func (ts *textSearch) release() {
	if ts.hits != nil {
		bitsPool.Put(ts.hits)
		ts.hits = nil
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
