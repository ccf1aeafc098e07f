package running

import (
	"cmp"
	"slices"
	"time"
)

// summaryDims are the dimensions the summary breaks the list down by.
var summaryDims = []int{dimProject, dimUser, dimReservation, dimLocation}

// tally is the counts of a set of jobs. Stale jobs are counted as stale
// only: their running time and slot usage are not believed.
type tally struct {
	Jobs      int     `json:"jobs"`
	Running   int     `json:"running"`
	Pending   int     `json:"pending"`
	Stale     int     `json:"stale"`
	Unknown   int     `json:"unknown"`
	RunningMs int64   `json:"running_ms"`
	SlotMs    int64   `json:"slot_ms"`
	Slots     float64 `json:"slots"`
}

func (t *tally) add(a *attrs, now time.Time) {
	t.Jobs++
	switch {
	case a.stale:
		t.Stale++
	case a.state == codePending:
		t.Pending++
	case a.state == codeRunning:
		t.Running++
		ms, ok := a.runningMs(now)
		slotMs, known := a.val(valSlotMs)
		if ok {
			t.RunningMs = addSaturating(t.RunningMs, ms)
		}
		if known {
			t.SlotMs = addSaturating(t.SlotMs, slotMs)
		}
		if ok && known && ms > 0 {
			t.Slots += float64(slotMs) / float64(ms)
		}
	default:
		t.Unknown++
	}
}

// group is the tally of the jobs sharing one value of a dimension.
type group struct {
	Key string `json:"key"`
	tally
}

// summary is the aggregate view of the list.
type summary struct {
	all    tally
	groups [numDims][]group
	// oldest is the running job that started first, queued the pending job
	// created first; stale jobs are not candidates.
	oldest, queued *view
	loss           lossJSON
}

// summarize tallies in one pass every job f matches (f's scope: every job
// its caller may see).
func (s *store) summarize(now time.Time, f *filter) summary {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := f.resolve(&s.dicts, now)
	var sum summary
	var acc [numDims][]tally
	for _, d := range summaryDims {
		acc[d] = make([]tally, s.dicts[d].size())
	}
	var oldest, queued *slot
	for i := range s.slots {
		sl := &s.slots[i]
		a := &sl.a
		if !m.match(a) {
			continue
		}
		sum.all.add(a, now)
		for _, d := range summaryDims {
			acc[d][a.dim[d]].add(a, now)
		}
		oldest = firstBy(oldest, sl, codeRunning, valStarted)
		queued = firstBy(queued, sl, codePending, valCreated)
	}
	for _, d := range summaryDims {
		sum.groups[d] = s.groups(d, acc[d])
	}
	sum.oldest, sum.queued = copyView(oldest, &m), copyView(queued, &m)
	sum.loss = s.loss.snapshot(f.scope)
	return sum
}

// firstBy returns whichever of best and sl is in state and not stale with
// the earlier value v, best when neither or both qualify and tie.
func firstBy(best, sl *slot, state stateCode, v int) *slot {
	if sl.a.stale || sl.a.state != state {
		return best
	}
	t, ok := sl.a.val(v)
	if !ok {
		return best
	}
	if best == nil {
		return sl
	}
	bt, _ := best.a.val(v)
	if t < bt || (t == bt && compareIDs(&sl.e.job.Key, &best.e.job.Key) < 0) {
		return sl
	}
	return best
}

// copyView copies a job out of the store as m's caller sees it.
func copyView(sl *slot, m *matcher) *view {
	if sl == nil {
		return nil
	}
	return &view{job: sl.e.job, stale: sl.a.stale, hidden: m.hidden(&sl.a, &sl.e.job)}
}

// groups names the non-empty tallies of a dimension, most jobs first.
func (s *store) groups(d int, acc []tally) []group {
	gs := []group{}
	for id, t := range acc {
		if t.Jobs > 0 {
			gs = append(gs, group{Key: s.dicts[d].name(uint32(id)), tally: t})
		}
	}
	slices.SortFunc(gs, func(a, b group) int { return cmp.Or(cmp.Compare(b.Jobs, a.Jobs), cmp.Compare(a.Key, b.Key)) })
	return gs
}
