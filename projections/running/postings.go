package running

import "slices"

// postings keep, for the dimensions whose values are few (the location and
// the job type) and for the state, the listed jobs of each value as a
// bitset by job id, the space the search index answers in. A search
// narrows the index's hits by the request's conditions on them before it
// reads any row: the hits name jobs in no useful order, each row they lead
// to is a cache miss, and most hits of a common term fail a location or
// state condition (`q=marts` names 26,604 of 100,000 simulated jobs, of
// which 7,434 are running in the US). A live store keeps them up to date as
// rows change; s.mu is held for every method.
//
// The dimensions of many values (project, user, reservation, statement
// type) are kept as sets (idSet: a sorted slice, or a roaring bitmap once
// large), a few bytes a job, so that the postings name every condition of
// a list but its labels and running time (exactMatches).
//
// A store being rebuilt keeps only the bitsets: the sets are made at once
// from the rows when it is rebuilt (makeSparse): some 8 ms per 100,000
// jobs in BenchmarkRebuild's profile, where keeping them up to date job by
// job took 0.15 s.
type postings struct {
	dims     [len(postedDims)]map[uint32]*idBits // by value (dictionary id)
	sparse   [len(sparseDims)]map[uint32]*idSet  // by value, once sparseOn
	sparseOn bool
	states   [codeFailed + 1]idBits
}

// postedDims are the dimensions postings keep as bitsets, sparseDims those
// they keep as sets.
var (
	postedDims = [...]int{dimLocation, dimType}
	sparseDims = [...]int{dimProject, dimUser, dimReservation, dimStatement}
)

// idBits is a set of job ids as a bitset, and how many it holds.
type idBits struct {
	w []uint64
	n int
}

func (b *idBits) set(id uint32) {
	k := int(id >> 6)
	if k >= len(b.w) {
		b.w = append(b.w, make([]uint64, k+1-len(b.w))...)
	}
	b.w[k] |= 1 << (id & 63)
	b.n++
}

// add puts id in b unless b holds it.
func (b *idBits) add(id uint32) {
	if !has(b.w, id) {
		b.set(id)
	}
}

func (b *idBits) unset(id uint32) {
	b.w[id>>6] &^= 1 << (id & 63)
	b.n--
}

// move records that the row of job id went from was to now; nil for a job
// not listed before, or no longer.
func (p *postings) move(id uint32, was, now *row) {
	for i, d := range postedDims {
		if was != nil && now != nil && was.dim[d] == now.dim[d] {
			continue
		}
		if was != nil {
			v := was.dim[d]
			b := p.dims[i][v]
			if b.unset(id); b.n == 0 {
				delete(p.dims[i], v) // a value no listed job has any more
			}
		}
		if now != nil {
			if p.dims[i] == nil {
				p.dims[i] = map[uint32]*idBits{}
			}
			b := p.dims[i][now.dim[d]]
			if b == nil {
				b = &idBits{}
				p.dims[i][now.dim[d]] = b
			}
			b.set(id)
		}
	}
	for i, d := range sparseDims {
		if !p.sparseOn || was != nil && now != nil && was.dim[d] == now.dim[d] {
			continue
		}
		if was != nil {
			v := was.dim[d]
			set := p.sparse[i][v]
			if set.remove(id); set.empty() {
				delete(p.sparse[i], v)
			}
		}
		if now != nil {
			if p.sparse[i] == nil {
				p.sparse[i] = map[uint32]*idSet{}
			}
			set := p.sparse[i][now.dim[d]]
			if set == nil {
				set = &idSet{}
				p.sparse[i][now.dim[d]] = set
			}
			set.add(id)
		}
	}
	if was != nil && now != nil && was.state == now.state {
		return
	}
	if was != nil {
		p.states[was.state].unset(id)
	}
	if now != nil {
		p.states[now.state].set(id)
	}
}

// makeSparse makes the sets of the dimensions of many values from rows,
// the rows of every listed job, and keeps them up to date from then on.
func (p *postings) makeSparse(rows []row) {
	for i, d := range sparseDims {
		ids := map[uint32][]uint32{}
		for k := range rows {
			ids[rows[k].dim[d]] = append(ids[rows[k].dim[d]], rows[k].id)
		}
		p.sparse[i] = make(map[uint32]*idSet, len(ids))
		for v, vs := range ids {
			slices.Sort(vs)
			set := idSetOf(vs)
			p.sparse[i][v] = &set
		}
	}
	p.sparseOn = true
}

// narrow clears from hits, a bitset by job id, the jobs that m's
// conditions on the dimensions, the state and the caller's own jobs rule
// out. The rows of those left are tested in full as before.
func (p *postings) narrow(m *matcher, hits []uint64) {
	for i, d := range postedDims {
		if m.on[d] {
			andBits(hits, p.dims[i][m.want[d]])
		}
	}
	if m.state != codeUnknown && int(m.state) < len(p.states) {
		andBits(hits, &p.states[m.state])
	}
	for i, d := range sparseDims {
		if !p.sparseOn {
			break // not made yet: hits keep the jobs these conditions rule out
		}
		if m.on[d] {
			andSet(hits, p.sparse[i][m.want[d]])
		}
		if d == dimUser && m.ownerOn {
			andSet(hits, p.sparse[i][m.owner])
		}
	}
}

// andSet keeps in hits only the ids set holds (none when set is nil).
func andSet(hits []uint64, set *idSet) {
	if set == nil {
		clear(hits)
		return
	}
	kept := takeBits(len(hits))
	defer bitsPool.Put(kept)
	set.each(func(id uint32) {
		if k := int(id >> 6); k < len(hits) {
			(*kept)[k] |= hits[k] & (1 << (id & 63))
		}
	})
	copy(hits, *kept)
}

// andBits keeps in hits only the ids b holds (none when b is nil).
func andBits(hits []uint64, b *idBits) {
	if b == nil {
		clear(hits)
		return
	}
	n := min(len(hits), len(b.w))
	for k := range n {
		hits[k] &= b.w[k]
	}
	clear(hits[n:])
}
