package running

import "slices"

// row is the part of a job's attributes that a list request's scan tests
// first, 32 bytes in a dense slice of its own: a scan of every job reads
// these rows, and the rest of a job (its slot, its values, its rank, its
// text) only when the row passes, so that it reads a fraction of the bytes
// whole slots would take.
type row struct {
	dim   [numDims]uint32
	state stateCode
	known uint8
	id    uint32
}

func rowOf(a *attrs, id uint32) row {
	return row{dim: a.dim, state: a.state, known: a.known, id: id}
}

// appendSlot puts sl at the end of the dense slice and of every slice
// that runs alongside it. s.mu is held.
func (s *store) appendSlot(sl slot) {
	s.slots = appendDoubling(s.slots, sl)
	s.rows = appendDoubling(s.rows, rowOf(&sl.a, sl.id))
	if s.indexed {
		s.posts.move(sl.id, nil, &s.rows[len(s.rows)-1])
		s.markListed(sl.id)
	}
	for int(sl.id) >= len(s.slotOf) {
		s.slotOf = append(s.slotOf, -1)
	}
	s.slotOf[sl.id] = int32(len(s.slots) - 1)
	for k := range s.vals {
		s.vals[k] = appendDoubling(s.vals[k], sl.a.vals[k])
	}
	s.sigs = appendDoubling(s.sigs, signatureOf(&sl.a.text))
	if s.ranking != nil {
		s.ranks = appendDoubling(s.ranks, 0)
	}
}

// appendDoubling is append for the dense slices, which a rebuild fills
// with every open job one by one: when full, it doubles the capacity,
// where append adds only a quarter once a slice is large. Each growth
// copies the whole slice, and while the collector marks, a copy of
// pointers pays a write barrier for every one; with a quarter at a time a
// rebuild of 100,000 jobs makes about 25 ever larger copies of each slice.
// Doubling copies each element about once, for at most twice the room the
// jobs need. It counts where the collector runs long, in a process whose
// heap is already large: BenchmarkRebuild, which rebuilds again and again
// in one process, was ready 18-22% sooner. A fresh process's restart after
// a backlog (33,000-48,000 jobs) was not measurably faster.
func appendDoubling[T any](s []T, v T) []T {
	if len(s) == cap(s) {
		s = slices.Grow(s, max(len(s), 64))
	}
	return append(s, v)
}

// setAttrs sets the attributes of the job in slot i. s.mu is held.
func (s *store) setAttrs(i int, a attrs) {
	var before orderValues
	orders := s.indexed && s.keepsOrders()
	if orders {
		before = s.valuesIn(i)
	}
	s.slots[i].a = a
	was := s.rows[i]
	s.rows[i] = rowOf(&a, s.slots[i].id)
	if s.indexed {
		s.posts.move(was.id, &was, &s.rows[i])
	}
	for k := range s.vals {
		s.vals[k][i] = a.vals[k]
	}
	if orders {
		s.markRevalued(i, &before)
	}
}

// removeSlot takes slot i out of the dense slice, moving the last slot into
// its place. s.mu is held.
func (s *store) removeSlot(i int) {
	last := len(s.slots) - 1
	s.slotOf[s.slots[i].id] = -1
	if s.indexed {
		s.posts.move(s.rows[i].id, &s.rows[i], nil)
	}
	if i != last {
		s.slots[i] = s.slots[last]
		s.slots[i].e.idx = i
		s.slotOf[s.slots[i].id] = int32(i)
		s.rows[i] = s.rows[last]
		for k := range s.vals {
			s.vals[k][i] = s.vals[k][last]
		}
		s.sigs[i] = s.sigs[last]
		if s.ranking != nil {
			s.ranks[i] = s.ranks[last]
		}
	}
	s.slots[last] = slot{}
	s.slots, s.rows, s.sigs = s.slots[:last], s.rows[:last], s.sigs[:last]
	for k := range s.vals {
		s.vals[k] = s.vals[k][:last]
	}
	if s.ranking != nil {
		s.ranks = s.ranks[:last]
	}
}
