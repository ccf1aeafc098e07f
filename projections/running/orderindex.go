package running

import (
	"math/bits"
	"slices"
	"sync"
)

// orderIndex keeps the listed jobs of a live store in one order, so that a
// sorted page whose matches the postings and the search index name exactly
// (exactMatches) reads the rows of the jobs it walks to until the page is
// full, not of every match: `state=running&location=US&q=marts&sort=-slot_ms`
// over 100,000 running jobs reads some 1,400 entries of the index instead
// of 7,434 rows, each a cache miss, and its total is the matches' count.
//
// The index is a copy of every listed job's value in the order, sorted, and
// the set of the jobs that may have left their place in it since: listed,
// or whose value in the order changed (dirty). A page walks the copy past
// the dirty jobs, and reads the dirty jobs it matches from the store as a
// scan would (a removed job's id matches nothing): the clean jobs of the
// copy are in the order and hold their values, so the page's first clean
// jobs and every dirty one hold the page. The copy is made again, outside
// the lock, when a page finds more than a few per cent of the jobs dirty
// (orderRebuildShare). The store keeps an index for each order asked for,
// from the first page of that order on (that page offers every match),
// and marks its dirty jobs under its write lock, a bit set per change.
// Each index takes 16 bytes a job, 1.6 MB per 100,000 jobs, and 40 more
// while it is copied.
type orderIndex struct {
	ents  []orderEnt
	dirty idBits // by job id
	next  *orderIndex
}

// orderEnt is a job in an order index: its id and its value when the copy
// was made. Ties are in id order.
type orderEnt struct {
	v     int64
	id    uint32
	known bool
}

// numOrders is how many orders a list can be asked for: every sort key, in
// both directions.
const numOrders = int(sortEnded+1) * 2

// slot returns o's place among numOrders.
func (o order) slot() int {
	if o.desc {
		return int(o.key)*2 + 1
	}
	return int(o.key) * 2
}

// orderOfSlot is the order whose slot is i.
func orderOfSlot(i int) order { return order{key: sortKey(i / 2), desc: i%2 == 1} }

// orderRebuildShare: an order index is copied again when more than one job
// in this many is dirty (and more than orderRebuildMin), so that a page
// reads a few per cent of the rows a scan would, and the copies (29 ms
// for 100,000 jobs in BenchmarkListHTTP, on another goroutine) come every
// few seconds at 2,000 changes a second.
const (
	orderRebuildShare = 32
	orderRebuildMin   = 256
)

// orderBuilds is the state of a store's order index builds, which pages
// start under the store's read lock.
type orderBuilds struct {
	mu      sync.Mutex
	running [numOrders]bool
	wg      sync.WaitGroup
	min     int // orderRebuildMin when 0
}

// least returns how many dirty jobs an index may have whatever their
// share.
func (b *orderBuilds) least() int {
	if b.min > 0 {
		return b.min
	}
	return orderRebuildMin
}

// mark notes that job id may have left its place in x (and in the copy
// being made for x). s.mu is held for writing.
func (x *orderIndex) mark(id uint32) {
	x.dirty.add(id)
	if x.next != nil {
		x.next.dirty.add(id)
	}
}

// markListed notes a job listed in every order index. A job removed needs
// no mark: it leaves the postings and the search index, so no page matches
// its id until a new job takes the id, and that job is marked. s.mu is
// held for writing.
func (s *store) markListed(id uint32) {
	for _, x := range s.orders {
		if x != nil {
			x.mark(id)
		}
	}
}

// orderValues holds a job's value in each order, to tell which of them a
// change of its attributes moves.
type orderValues [numOrders]struct {
	v     int64
	known bool
}

// valuesIn returns the values of the job in slot i in the orders s keeps
// an index of. s.mu is held.
func (s *store) valuesIn(i int) (vs orderValues) {
	for k, x := range s.orders {
		if x != nil {
			vs[k].v, vs[k].known = orderOfSlot(k).valueAt(&s.vals, i, s.rows[i].known)
		}
	}
	return vs
}

// markRevalued marks the job in slot i in the order indexes in which its
// value is no longer was. s.mu is held for writing.
func (s *store) markRevalued(i int, was *orderValues) {
	now := s.valuesIn(i)
	for k, x := range s.orders {
		// Unknown values tie whatever they hold (order.compare).
		if x != nil && (now[k].known != was[k].known || now[k].known && now[k].v != was[k].v) {
			x.mark(s.slots[i].id)
		}
	}
}

// keepsOrders reports whether s has an order index to keep up to date.
func (s *store) keepsOrders() bool {
	for _, x := range s.orders {
		if x != nil {
			return true
		}
	}
	return false
}

// orderIndexFor returns the index of order o to answer a page from, or
// nil, and starts a copy of it when there is none or too many of its jobs
// are dirty. s.mu is held for reading at least.
func (s *store) orderIndexFor(o order) *orderIndex {
	x := s.orders[o.slot()]
	if x == nil || x.dirty.n > s.orderBuilds.least() && x.dirty.n*orderRebuildShare > len(s.slots) {
		s.buildOrder(o)
	}
	if x == nil || x.ents == nil {
		return nil
	}
	return x
}

// buildOrder starts copying the order index of o, unless a copy of it is
// being made.
func (s *store) buildOrder(o order) {
	b := &s.orderBuilds
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running[o.slot()] {
		return
	}
	b.running[o.slot()] = true
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		x, next := s.startOrderCopy(o)
		s.copyOrder(o, next)
		s.finishOrderCopy(x, next)
		b.mu.Lock()
		b.running[o.slot()] = false
		b.mu.Unlock()
	}()
}

// startOrderCopy returns the order index of o, created if need be, and the
// copy to make of it, which marks the jobs that change from now on. It
// takes s.mu.
func (s *store) startOrderCopy(o order) (x, next *orderIndex) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x = s.orders[o.slot()]
	if x == nil {
		x = &orderIndex{}
		s.orders[o.slot()] = x
	}
	x.next = &orderIndex{}
	return x, x.next
}

// copyOrder copies every listed job's value in o into next, and sorts
// them in o, ties in id order (the ranks). Jobs that change after
// startOrderCopy and before they are read are marked and read as they are:
// marking too many is safe. It takes s.mu for reading while it copies.
func (s *store) copyOrder(o order, next *orderIndex) {
	type ranked struct {
		orderEnt
		rank uint64
	}
	s.mu.RLock()
	es := make([]ranked, len(s.slots))
	for i := range s.slots {
		v, known := o.valueAt(&s.vals, i, s.rows[i].known)
		if !known {
			v = 0
		}
		es[i] = ranked{orderEnt{v: v, id: s.slots[i].id, known: known}, s.ranks[i]}
	}
	s.mu.RUnlock()
	slices.SortFunc(es, func(a, b ranked) int {
		return o.compare(position{v: a.v, known: a.known, ranked: true, rank: a.rank},
			position{v: b.v, known: b.known, ranked: true, rank: b.rank})
	})
	next.ents = make([]orderEnt, len(es))
	for i := range es {
		next.ents[i] = es[i].orderEnt
	}
}

// finishOrderCopy puts the copy next in place in x. It takes s.mu.
func (s *store) finishOrderCopy(x, next *orderIndex) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x.ents, x.dirty, x.next = next.ents, next.dirty, nil
}

// awaitOrders waits until no order index is being copied.
func (s *store) awaitOrders() { s.orderBuilds.wg.Wait() }

// exactMatches returns, as a bitset by job id, the jobs that match q's
// page of the running list (not a time range of history), resolved as m
// and ts, when the postings and the search index name them exactly: every
// condition is on a dimension, the state or the caller's own jobs (none on
// labels or the running time), and every term of the search is one the
// index answers for the whole text the caller may search (the caller reads
// every query text). Otherwise it returns nil. release gives back a bitset
// it took. s.mu is held.
func (s *store) exactMatches(q *listQuery, m *matcher, ts *textSearch) (matches []uint64, release func()) {
	if q.span != nil || !s.indexed || s.ranking == nil || !s.posts.sparseOn || m.more() {
		return nil, nil
	}
	for d, on := range m.on {
		if on && !slices.Contains(postedDims[:], d) && !slices.Contains(sparseDims[:], d) {
			return nil, nil
		}
	}
	if m.state != codeUnknown && int(m.state) >= len(s.posts.states) {
		return nil, nil
	}
	if len(ts.terms) > 0 {
		if ts.hits == nil || len(ts.rest) > 0 || m.hiding {
			return nil, nil
		}
		if m.none {
			clear(*ts.hits)
		}
		return *ts.hits, func() {} // narrowed by the postings (searchFor)
	}
	if ts.hits != nil { // the postings' candidates (searchFor)
		if m.none {
			clear(*ts.hits)
		}
		return *ts.hits, func() {}
	}
	var b *[]uint64
	if m.none {
		b = takeBits(s.ids.words())
	} else {
		b = s.listedIDs()
		s.posts.narrow(m, *b)
	}
	return *b, func() { bitsPool.Put(b) }
}

// fromMatches finds the page and the total of sc's request, whose matches
// are the bitset by job id matches: it offers the page every match when
// they are few, and otherwise walks the order index of the page's order
// (walkOrder) when it has been copied. Offering a match reads its row and
// value, wherever they are; walking reads the index in order, about
// limit·jobs/matches entries, each costing a fraction of a random read:
// the walk is chosen when matches² > limit·jobs/4.
func (sc *scan) fromMatches(matches []uint64) {
	for _, w := range matches {
		sc.p.total += bits.OnesCount64(w)
	}
	if x := sc.s.orderToWalk(sc.q, sc.p.total); x != nil {
		sc.walkOrder(x, matches)
		return
	}
	sc.offerAll(matches, matches)
}

// orderToWalk returns the order index to walk for a page of q with n
// matches, or nil when offering every match costs less or the index has
// not been copied. s.mu is held.
func (s *store) orderToWalk(q *listQuery, n int) *orderIndex {
	if n*n <= (q.limit+1)*len(s.slots)/4 {
		return nil
	}
	return s.orderIndexFor(q.order)
}

// offerAll offers the page every job of matches, a bitset by job id, that
// also is in of, a bitset of the same kind.
func (sc *scan) offerAll(matches, of []uint64) {
	s := sc.s
	for k := range min(len(matches), len(of)) {
		for w := matches[k] & of[k]; w != 0; w &= w - 1 {
			i := int(s.slotOf[k<<6|bits.TrailingZeros64(w)])
			sc.offer(i, s.rows[i].known)
		}
	}
}

// walkOrder finds the page of sc's request, whose matches are the bitset
// by job id matches, from the order index x: it offers the page every
// dirty match, then the clean matches in x's order from the cursor on
// until it has offered a page of them.
func (sc *scan) walkOrder(x *orderIndex, matches []uint64) {
	s, o := sc.s, sc.q.order
	dirty := x.dirty.w
	sc.offerAll(matches, dirty)
	start := 0
	if sc.after != nil {
		start, _ = slices.BinarySearchFunc(x.ents, sc.after, func(e orderEnt, p *position) int {
			if o.afterByValue(p.v, p.known, &position{v: e.v, known: e.known}) {
				return -1 // e comes before p by its value alone
			}
			return 1
		})
	}
	offered := 0
	for _, e := range x.ents[start:] {
		if has(dirty, e.id) || !has(matches, e.id) {
			continue
		}
		pos := o.positionAt(s, int(s.slotOf[e.id]), e.v, e.known)
		if sc.after != nil && o.compare(pos, *sc.after) <= 0 {
			continue
		}
		if sc.top.full() && o.compare(pos, sc.top.heap[0].pos) >= 0 {
			return // every clean job left comes after the page
		}
		sc.top.offer(candidate{pos: pos, s: pos.slot})
		if offered++; offered == sc.top.k {
			return
		}
	}
}

// has reports whether the bitset b holds id.
func has(b []uint64, id uint32) bool {
	k := int(id >> 6)
	return k < len(b) && b[k]&(1<<(id&63)) != 0
}
