package running

import (
	"math"
	"slices"
	"strings"

	"github.com/google/btree"

	"github.com/bqobserver/bqobserver/events"
)

// ranking keeps, for every job of a store, a rank: a number that orders the
// jobs as their ids (project/location/job_id) do. Ties of a sort are broken
// by the ids, and when most jobs tie (no slot-ms known yet) a list request
// would read two jobs' keys, far apart in memory, at every comparison; it
// compares the ranks, which sit in the dense slice, instead.
//
// A new job takes the middle of the free range between its neighbours'
// ranks; when the range is empty, a window of neighbours around it, doubled
// until its range leaves a gap at least as wide as the window is long, is
// spread evenly. Ranks change only under the store's write lock.
type ranking struct {
	tree *btree.BTreeG[rankItem] // every job, in id order
}

// rankItem is a job in the ranking's tree with its id (idOf), so that a
// comparison reads one string beside the item, not the three parts of two
// keys behind two pointers: placing and unplacing jobs cost some 5% of the
// service's CPU at 5,000 entries a second, most of it in comparisons.
type rankItem struct {
	id string
	en *entry
}

// rankItemOf returns en's item, its id made once and kept in en.
func rankItemOf(en *entry) rankItem {
	if en.rankID == "" {
		en.rankID = idOf(&en.job.Key)
	}
	return rankItem{id: en.rankID, en: en}
}

// compareItems orders jobs by id, and the rare distinct keys whose ids are
// the same string ("a/b", "c" and "a", "b/c") by project: a total order.
// Only equal ids read the keys behind the pointers.
func compareItems(a, b rankItem) int {
	if c := strings.Compare(a.id, b.id); c != 0 {
		return c
	}
	return strings.Compare(a.en.job.Key.Project, b.en.job.Key.Project)
}

func newRanking() *ranking {
	return &ranking{tree: btree.NewG(32, func(a, b rankItem) bool { return compareItems(a, b) < 0 })}
}

// rankAll ranks every job of the store at once, evenly over the whole range
// of ranks. s.mu is held.
func (s *store) rankAll() {
	es := make([]rankItem, len(s.slots))
	for i := range s.slots {
		es[i] = rankItemOf(s.slots[i].e)
	}
	slices.SortFunc(es, compareItems)
	s.ranking = newRanking()
	s.ranks = make([]uint64, len(s.slots))
	gap := math.MaxUint64 / (uint64(len(es)) + 1)
	for i, it := range es {
		s.ranks[it.en.idx] = uint64(i+1) * gap
		s.ranking.tree.ReplaceOrInsert(it)
	}
}

// place ranks a job just put in the store. s.mu is held.
func (s *store) place(en *entry) {
	s.ranking.tree.ReplaceOrInsert(rankItemOf(en))
	lo, hi := s.neighbourRanks(en)
	if hi-lo >= 2 {
		s.ranks[en.idx] = lo + (hi-lo)/2
		return
	}
	s.spread(en)
}

// unplace forgets the rank of a job leaving the store. s.mu is held.
func (s *store) unplace(en *entry) { s.ranking.tree.Delete(rankItemOf(en)) }

// neighbourRanks returns the ranks of the jobs just before and just after
// en, 0 and math.MaxUint64 where there are none.
func (s *store) neighbourRanks(en *entry) (lo, hi uint64) {
	before, after := s.around(en, 1)
	lo, hi = 0, math.MaxUint64
	if len(before) > 0 {
		lo = s.ranks[before[0].idx]
	}
	if len(after) > 0 {
		hi = s.ranks[after[0].idx]
	}
	return lo, hi
}

// around returns up to n jobs before en, nearest first, and up to n after.
func (s *store) around(en *entry, n int) (before, after []*entry) {
	it := rankItemOf(en)
	s.ranking.tree.DescendLessOrEqual(it, func(o rankItem) bool {
		if o.en != en {
			before = append(before, o.en)
		}
		return len(before) < n
	})
	s.ranking.tree.AscendGreaterOrEqual(it, func(o rankItem) bool {
		if o.en != en {
			after = append(after, o.en)
		}
		return len(after) < n
	})
	return before, after
}

// spread re-ranks a window of jobs around en, en included, evenly over the
// range between the window's outer neighbours.
func (s *store) spread(en *entry) {
	for k := 1; ; k *= 2 {
		before, after := s.around(en, k+1)
		lo, hi := uint64(0), uint64(math.MaxUint64)
		if len(before) == k+1 {
			lo = s.ranks[before[k].idx]
			before = before[:k]
		}
		if len(after) == k+1 {
			hi = s.ranks[after[k].idx]
			after = after[:k]
		}
		n := uint64(len(before) + 1 + len(after))
		gap := (hi - lo) / (n + 1)
		whole := lo == 0 && hi == math.MaxUint64
		if gap < n && !whole {
			continue
		}
		r := lo
		for i := len(before) - 1; i >= 0; i-- {
			r += gap
			s.ranks[before[i].idx] = r
		}
		r += gap
		s.ranks[en.idx] = r
		for _, o := range after {
			r += gap
			s.ranks[o.idx] = r
		}
		return
	}
}

// cursorRank returns where a cursor's job falls among the ranks: its own
// rank if it is listed, else just after the rank of the job before it (or
// before every rank).
func (s *store) cursorRank(key *events.JobKey) (rank uint64, half bool) {
	probe := &entry{job: events.Job{Key: *key}}
	found := false
	s.ranking.tree.DescendLessOrEqual(rankItemOf(probe), func(o rankItem) bool {
		rank = s.ranks[o.en.idx]
		found = o.en.job.Key == *key
		return false
	})
	return rank, !found
}
