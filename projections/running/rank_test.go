package running

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/bqobserver/bqobserver/events"
)

// Ranks follow the jobs' ids however jobs arrive: always after the last
// (each one halves the room left), always before the first, into a few
// narrowing gaps, at random, and as jobs leave, after the first thousand,
// inserted while the store was quiet, were ranked at once.
func TestRanksFollowKeys(t *testing.T) {
	for _, c := range []struct {
		name string
		ids  func(i int) string
	}{
		{"increasing", func(i int) string { return fmt.Sprintf("j%06d", i) }},
		{"decreasing", func(i int) string { return fmt.Sprintf("j%06d", 1_000_000-i) }},
		{"into one gap", func(i int) string { return "m" + strings.Repeat("~", i%50) + fmt.Sprintf("%06d", 1_000_000-i) }},
		{"random", func(int) string { return fmt.Sprintf("j%08x", rand.Uint32()) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var cfg Config
			cfg.setDefaults()
			s := newLiveStore(cfg, newRing(16))
			// Two jobs bound the gap the "into one gap" jobs all go into.
			for _, id := range []string{"a", "z"} {
				s.insert(&entry{job: events.Job{Key: events.JobKey{Project: "p", Location: "US", JobID: id}}}, attrs{})
			}
			for i := range 3000 {
				s.insert(&entry{job: events.Job{Key: events.JobKey{Project: "p", Location: "US", JobID: c.ids(i)}}}, attrs{})
				if i%7 == 3 {
					s.remove(s.slots[len(s.slots)/2].e, t0)
				}
				if i == 1000 {
					s.setQuiet(false) // ranks the first thousand at once
					s.awaitIndex()    // the test changes the store without its lock
				}
				if i >= 1000 && (i%100 == 0 || i > 2900) {
					checkRanks(t, s)
				}
			}
		})
	}
}

// checkRanks fails t unless the ranks of s's jobs rise strictly with their ids.
func checkRanks(t *testing.T, s *store) {
	t.Helper()
	var byID []*entry
	s.ranking.tree.Ascend(func(it rankItem) bool {
		if it.id != idOf(&it.en.job.Key) {
			t.Fatalf("%s is in the ranking's tree as %q", it.en.job.Key, it.id)
		}
		byID = append(byID, it.en)
		return true
	})
	if len(byID) != len(s.slots) {
		t.Fatalf("%d jobs ranked, %d listed", len(byID), len(s.slots))
	}
	want := slices.Clone(byID)
	slices.SortFunc(want, func(a, b *entry) int { return compareIDs(&a.job.Key, &b.job.Key) })
	if !slices.Equal(byID, want) {
		t.Fatal("the ranking's tree is not in id order")
	}
	for i := 1; i < len(byID); i++ {
		if a, b := s.ranks[byID[i-1].idx], s.ranks[byID[i].idx]; a >= b {
			t.Fatalf("%s ranks %d, not below %s's %d", byID[i-1].job.Key, a, byID[i].job.Key, b)
		}
	}
}
