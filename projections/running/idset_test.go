package running

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// An idSet holds what a map holds after the same random adds and removes,
// through both of its forms and back.
func TestIDSetMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var s idSet
	want := map[uint32]bool{}
	forms := map[bool]int{}
	for i := range 20000 {
		id := uint32(r.IntN(200)) << uint(r.IntN(2)*12) // some ids in a second roaring container
		grow := (i/2000)%2 == 0
		if r.IntN(3) > 0 == grow {
			s.add(id)
			want[id] = true
		} else {
			s.remove(id)
			delete(want, id)
		}
		forms[s.big != nil]++
		var got []uint32
		s.each(func(id uint32) { got = append(got, id) })
		if diff := cmp.Diff(slices.Sorted(maps.Keys(want)), got); diff != "" {
			t.Fatalf("step %d: set differs (-want +got):\n%s", i, diff)
		}
		if s.len() != len(want) || s.empty() != (len(want) == 0) || s.contains(id) != want[id] {
			t.Fatalf("step %d: len %d, empty %t, contains(%d) %t; want %d, %t, %t", i, s.len(), s.empty(), id, s.contains(id), len(want), len(want) == 0, want[id])
		}
	}
	if forms[true] == 0 || forms[false] == 0 {
		t.Fatalf("the set took one form only: %v", forms)
	}
}
