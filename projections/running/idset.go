package running

import (
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
)

// idSet is a set of small numbers (job ids, word ids): a short sorted slice
// while it is small, as most sets of the search index are (the jobs of a
// job id, the words of a rare trigram), a roaring bitmap once it is large.
// The slice costs a few bytes an id and one allocation; a bitmap costs more
// until it holds many.
type idSet struct {
	small []uint32
	big   *roaring.Bitmap
}

// Bounds of a small set: a set grows into a bitmap past maxSmall ids and
// shrinks back to a slice below minBig, so that a set near the bound does
// not change form at every change.
const (
	maxSmall = 64
	minBig   = 32
)

// idSetOf returns the set of ids, which are sorted and distinct; a small
// set keeps the slice.
func idSetOf(ids []uint32) idSet {
	if len(ids) <= maxSmall {
		return idSet{small: slices.Clip(ids)}
	}
	big := roaring.New()
	big.AddMany(ids)
	return idSet{big: big}
}

func (s *idSet) add(id uint32) {
	if s.big != nil {
		s.big.Add(id)
		return
	}
	i, found := slices.BinarySearch(s.small, id)
	if found {
		return
	}
	if len(s.small) < maxSmall {
		s.small = slices.Insert(s.small, i, id)
		return
	}
	s.big = roaring.BitmapOf(s.small...)
	s.big.Add(id)
	s.small = nil
}

func (s *idSet) remove(id uint32) {
	if s.big != nil {
		s.big.Remove(id)
		if s.big.GetCardinality() < minBig {
			s.small, s.big = s.big.ToArray(), nil
		}
		return
	}
	if i, found := slices.BinarySearch(s.small, id); found {
		s.small = slices.Delete(s.small, i, i+1)
	}
}

func (s *idSet) empty() bool {
	if s.big != nil {
		return s.big.IsEmpty()
	}
	return len(s.small) == 0
}

func (s *idSet) len() int {
	if s.big != nil {
		return int(s.big.GetCardinality())
	}
	return len(s.small)
}

func (s *idSet) contains(id uint32) bool {
	if s.big != nil {
		return s.big.Contains(id)
	}
	_, found := slices.BinarySearch(s.small, id)
	return found
}

// each calls f with every id of the set, in increasing order.
func (s *idSet) each(f func(uint32)) {
	if s.big != nil {
		s.big.Iterate(func(id uint32) bool {
			f(id)
			return true
		})
		return
	}
	for _, id := range s.small {
		f(id)
	}
}
