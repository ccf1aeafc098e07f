package running

import (
	"math/bits"
	"slices"
	"time"
)

// listQuery is one page request.
type listQuery struct {
	filter filter
	order  order
	after  *cursor // nil for the first page
	limit  int
	span   *span // the time range of a history page, nil for the running list
}

// page is one page of the list.
type page struct {
	jobs  []byte  // the JSON array of the page's jobs
	n     int     // how many jobs the page holds
	total int     // jobs matching the filter, on every page
	next  *cursor // nil on the last page
	// stream is the id of the newest stream event the page reflects, read
	// under the same lock: a client that buffered the stream while it
	// fetched the page applies only the events after it. "" without a
	// stream (the history), or with min_running (list).
	stream string
}

// list answers a page request, encoding its jobs onto buf in one pass over
// the dense slice, or over the slots of the jobs the search index names
// when they are few (textSearch.slots): every job is tested against the
// filter (its row first, then the rest of its attributes, then the search:
// the index's answer, the signature, the search text last) and counted,
// and those after the cursor compete for the page in a bounded heap, so a
// request costs O(jobs + matches·log limit) and allocates only the page.
// The jobs are encoded under the read lock, which costs less than copying
// them out.
func (s *store) list(q *listQuery, now time.Time, preview int, buf []byte) (pg page) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.changes != nil && q.filter.minRunning == 0 {
		// Changes are published under the store's write lock, so none is
		// half applied while this read lock is held. Not with min_running:
		// the stream announces a job that crossed it with the id of the
		// newest change, which may be the page's, though the page did not
		// hold it yet.
		defer func(seq uint64) { pg.stream = s.changes.id(seq) }(s.changes.current())
	}
	m := q.filter.resolve(&s.dicts, now)
	search := s.searchFor(&m)
	defer search.release()
	sc := scan{s: s, q: q, m: &m, search: &search, after: s.cursorPosition(q.after), more: m.more(),
		top: topK{order: q.order, k: q.limit + 1}}
	if matches, release := s.exactMatches(q, &m, &search); matches != nil {
		sc.fromMatches(matches)
		release()
	} else if sel := search.slots(s); sel != nil {
		for k, w := range sel {
			for ; w != 0; w &= w - 1 {
				i := k<<6 | bits.TrailingZeros64(w)
				if r := &s.rows[i]; m.matchRow(&r.dim, r.state) {
					sc.consider(i, r)
				}
			}
		}
	} else {
		for i := range s.rows {
			if r := &s.rows[i]; m.matchRow(&r.dim, r.state) {
				sc.consider(i, r)
			}
		}
	}
	p, top := sc.p, &sc.top
	best := top.sorted()
	if len(best) > q.limit {
		best = best[:q.limit]
		last := best[len(best)-1].pos
		key := *last.jobKey()
		last.key, last.slot, last.ranked = &key, nil, false // the cursor outlives the lock
		p.next = &cursor{order: q.order, pos: last, span: q.span}
	}
	buf = append(buf, '[')
	for i, r := range best {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJobOrError(buf, &r.s.e.job, r.s.a.stale, m.hidden(&r.s.a, &r.s.e.job), preview)
	}
	p.jobs, p.n = append(buf, ']'), len(best)
	return p
}

// scan is one list request's pass over the jobs: what it tests them
// against and what it has found.
type scan struct {
	s      *store
	q      *listQuery
	m      *matcher
	search *textSearch
	after  *position
	more   bool
	top    topK
	p      page
}

// consider tests the job in slot i, whose row r has passed the row's
// filter, against the rest of the request, counts it and offers it to the
// page.
func (sc *scan) consider(i int, r *row) {
	s := sc.s
	if sc.more && !sc.m.matchMore(&s.slots[i].a) || !sc.search.match(sc.m, s, i, r) {
		return
	}
	sc.p.total++
	sc.offer(i, r.known)
}

// offer offers the page the matching job in slot i, whose known values
// are known, if it comes after the cursor.
func (sc *scan) offer(i int, known uint8) {
	s, q := sc.s, sc.q
	v, ok := q.order.valueAt(&s.vals, i, known)
	if sc.top.full() && q.order.afterByValue(v, ok, &sc.top.heap[0].pos) {
		return // most jobs: after the last of the page by value alone
	}
	pos := q.order.positionAt(s, i, v, ok)
	if sc.after != nil && q.order.compare(pos, *sc.after) <= 0 {
		return
	}
	sc.top.offer(candidate{pos: pos, s: pos.slot})
}

// cursorPosition returns the position a page starts after, placed among
// the store's ranks when it ranks its jobs; nil for a first page. s.mu is
// held.
func (s *store) cursorPosition(c *cursor) *position {
	if c == nil {
		return nil
	}
	pos := c.pos
	if s.ranking != nil {
		pos.rank, pos.half = s.cursorRank(pos.jobKey())
		pos.ranked = true
	}
	return &pos
}

// candidate is a job with its position in the order being collected.
type candidate struct {
	pos position
	s   *slot
}

// topK keeps the k first jobs of an order among those offered, in a heap
// whose root is the last of them.
type topK struct {
	order order
	k     int
	heap  []candidate
}

// full reports whether the heap holds k jobs.
func (t *topK) full() bool { return len(t.heap) == t.k }

func (t *topK) offer(r candidate) {
	if len(t.heap) < t.k {
		t.heap = append(t.heap, r)
		t.up(len(t.heap) - 1)
		return
	}
	if t.order.compare(r.pos, t.heap[0].pos) >= 0 {
		return
	}
	t.heap[0] = r
	t.down(0)
}

// after reports whether heap element i comes after element j in the order.
func (t *topK) after(i, j int) bool { return t.order.compare(t.heap[i].pos, t.heap[j].pos) > 0 }

func (t *topK) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !t.after(i, parent) {
			return
		}
		t.heap[i], t.heap[parent] = t.heap[parent], t.heap[i]
		i = parent
	}
}

func (t *topK) down(i int) {
	for {
		worst, l, r := i, 2*i+1, 2*i+2
		if l < len(t.heap) && t.after(l, worst) {
			worst = l
		}
		if r < len(t.heap) && t.after(r, worst) {
			worst = r
		}
		if worst == i {
			return
		}
		t.heap[i], t.heap[worst] = t.heap[worst], t.heap[i]
		i = worst
	}
}

// sorted returns the kept jobs in order.
func (t *topK) sorted() []candidate {
	slices.SortFunc(t.heap, func(a, b candidate) int { return t.order.compare(a.pos, b.pos) })
	return t.heap
}
