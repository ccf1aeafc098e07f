package running

import (
	"slices"
	"time"
)

// jobText is a listed job's id and search text, as indexAll reads them.
type jobText struct {
	id   uint32
	text searchText
}

// indexBuild is the word index of the listed jobs being built outside the
// store's lock, from a copy of their texts taken when the rebuild ends. The
// list is ready without the index (until it is in place, a search reads
// the texts of the jobs it would have narrowed down), so that a restart does
// not wait the 0.5–1 s per 100,000 jobs of cutting every text into words while the jobs
// change. The jobs listed, changed or removed meanwhile are noted, and the
// index is brought up to date for them when it is put in place.
type indexBuild struct {
	texts   []jobText     // the texts the index is built from
	changed []uint32      // the ids of the jobs whose text changed since the copy
	done    chan struct{} // closed once the index is in place
	jobs    int           // len(texts), for the log
	took    time.Duration // from the copy to the index in place
	start   time.Time
}

// startIndex copies the texts of the listed jobs for an index built outside
// the lock. s.mu is held.
func (s *store) startIndex() *indexBuild {
	b := &indexBuild{texts: jobTexts(s.slots), jobs: len(s.slots), done: make(chan struct{}), start: time.Now()}
	s.building = b
	return b
}

// jobTexts returns the ids and texts of the jobs in slots.
func jobTexts(slots []slot) []jobText {
	texts := make([]jobText, len(slots))
	for i := range slots {
		texts[i] = jobText{id: slots[i].id, text: slots[i].a.text}
	}
	return texts
}

// build builds the index of b's texts, with one worker per CPU.
func (b *indexBuild) build() *searchIndex {
	return indexAll(b.texts, indexWorkers(len(b.texts)))
}

// noteText records that the text of job id changed (the job was listed,
// changed or removed) while no index follows the changes. s.mu is held.
func (s *store) noteText(id uint32) {
	if s.building != nil {
		s.building.changed = append(s.building.changed, id)
	}
}

// finishIndex puts x, built from b's texts, in place, after bringing it up
// to date for the jobs whose text changed since b copied the texts: a job
// id names the text it had in the copy, if any, and the text of the job it
// names now, if any (an id freed by a finished job may name a new one). It
// takes s.mu.
func (s *store) finishIndex(b *indexBuild, x *searchIndex) {
	s.mu.Lock()
	defer s.mu.Unlock()
	slices.Sort(b.changed)
	changed := slices.Compact(b.changed)
	was := make(map[uint32]*searchText, len(changed))
	if len(changed) > 0 {
		for i := range b.texts {
			if _, found := slices.BinarySearch(changed, b.texts[i].id); found {
				was[b.texts[i].id] = &b.texts[i].text
			}
		}
	}
	for _, id := range changed {
		old, now := was[id], (*searchText)(nil)
		if int(id) < len(s.slotOf) && s.slotOf[id] >= 0 {
			now = &s.slots[s.slotOf[id]].a.text
		}
		switch {
		case old != nil && now != nil:
			if *old != *now {
				x.replace(id, old, now)
			}
		case old != nil:
			x.remove(id, old)
		case now != nil:
			x.add(id, now)
		}
	}
	s.index, s.building = x, nil
	b.texts, b.changed, b.took = nil, nil, time.Since(b.start)
	close(b.done)
}

// indexing returns the index build under way, nil when none is.
func (s *store) indexing() *indexBuild {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.building
}

// awaitIndex waits until no index is being built.
func (s *store) awaitIndex() {
	if b := s.indexing(); b != nil {
		<-b.done
	}
}
