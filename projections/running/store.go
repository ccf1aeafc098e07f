package running

import (
	"sync"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// store holds the running jobs: one folded events.Job per job in a map, and
// the jobs' attributes in a dense slice that list, summary and stream
// requests scan without chasing pointers. Every write publishes a change to
// the ring under the same lock, so the ring's order is the store's order.
type store struct {
	staleAfter time.Duration

	mu      sync.RWMutex
	jobs    map[events.JobKey]*entry
	slots   []slot
	rows    []row            // the part of slots[i].a that a list's scan tests first
	vals    [numVals][]int64 // slots[i].a.vals, value by value
	sigs    []signature      // the signature of slots[i].a.text
	ranks   []uint64         // the rank of slots[i], when the store ranks its jobs
	slotOf  []int32          // by job id: the job's slot, for the ids of listed jobs
	posts   postings         // kept by a store that indexes its jobs (indexed)
	ids     jobIDs
	index   *searchIndex // nil for a store that is searched by reading every text
	ranking *ranking     // nil for a store whose ties compare job keys
	// indexed: the store indexes and ranks its jobs once it is no longer
	// quiet. While it is (the rebuild), index and ranking are nil; the
	// index is then built outside the lock (building) and is nil until it
	// is in place.
	indexed  bool
	building *indexBuild
	// orders: a live store's order indexes, by order.slot(), each kept
	// from the first page asked in its order on.
	orders      [numOrders]*orderIndex
	orderBuilds orderBuilds
	dicts       [numDims]*dict
	tombs       tombstones
	changes     *ring
	quiet       bool // no changes are published while the rebuild runs
	loss        loss // jobs enrichment closed or found, counted when not quiet
	// since is when the projection started remembering finished jobs:
	// an event of an unknown job from before it may belong to a job that
	// finished earlier.
	since time.Time
}

// entry is one running job.
type entry struct {
	job events.Job
	idx int    // position in store.slots
	id  uint32 // the job's number in the search index, while it is listed
	// rankID is idOf(job.Key), once the ranking has needed it.
	rankID string
}

// slot is one job's place in the dense slice.
type slot struct {
	a  attrs
	e  *entry
	id uint32 // e.id
}

// view is a job as the API shows it to one caller, copied out of the
// store. The copy is shallow: the fold replaces, never mutates, the values
// a Job points to. hidden says that the caller may not read its query text,
// which the API then leaves out (only when there is one).
type view struct {
	job    events.Job
	stale  bool
	hidden bool
}

func newStore(cfg Config, changes *ring) *store {
	s := &store{
		staleAfter: cfg.StaleAfter,
		jobs:       map[events.JobKey]*entry{},
		tombs:      newTombstones(cfg.TombstoneTTL),
		changes:    changes,
		quiet:      true,
		loss:       newLoss(cfg.Now()),
	}
	for i := range s.dicts {
		s.dicts[i] = newDict()
	}
	return s
}

// newLiveStore returns a store for the running list, which lists are asked
// of many times while it changes: it indexes its jobs' search texts and
// ranks its jobs in id order as they come and go. While it is quiet (the
// rebuild, when nothing is listed yet) it does neither: setQuiet(false)
// indexes and ranks every job at once, which costs a fraction of keeping
// the index and the ranks up to date job by job.
func newLiveStore(cfg Config, changes *ring) *store {
	s := newStore(cfg, changes)
	s.indexed = true
	return s
}

func (s *store) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.slots)
}

// setQuiet turns the publication of changes off or on. The first time it
// turns it on, a store that indexes its jobs ranks them, and starts
// building their word index, which it puts in place once built (see
// indexBuild).
func (s *store) setQuiet(q bool) {
	s.mu.Lock()
	s.quiet = q
	var b *indexBuild
	if !q && s.indexed && s.ranking == nil {
		s.posts.makeSparse(s.rows)
		s.rankAll()
		b = s.startIndex()
	}
	s.mu.Unlock()
	if b != nil {
		go func() { s.finishIndex(b, b.build()) }()
	}
}

// What applyEvent did with an event.
type applied int

const (
	// appliedListed: the event was folded into the list.
	appliedListed applied = iota
	// appliedFinished: the event belongs to a job remembered as finished
	// and changed nothing, or it is the first event of a job seen and it
	// is DONE.
	appliedFinished
	// appliedClosed: the event finished a listed job, which left the list.
	appliedClosed
	// appliedUnknown: the event belongs to a job that is neither listed
	// nor remembered as finished, and is older than the memory of
	// finished jobs or has no state. Only the job's history in the log
	// can tell whether it may be listed; the event was not applied.
	appliedUnknown
)

// applyEvent folds one event into its job.
func (s *store) applyEvent(e *events.Event, now time.Time) applied {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tombs.expire(now)
	en := s.jobs[e.Job]
	if en == nil {
		if s.tombs.has(e.Job) {
			return appliedFinished
		}
		// An event with no state (a request to cancel) says nothing of
		// whether the job runs, whatever its time: a request to cancel a
		// job that finished long ago is dated now.
		if e.State == events.StateUnknown || e.State != events.StateDone && e.Time.Before(s.memorySince(now)) {
			return appliedUnknown
		}
	}
	done := s.update(e.Job, en, now, func(j *events.Job) { j.Apply(e) })
	if en == nil && s.jobs[e.Job] != nil && !s.quiet {
		s.loss.listed(e)
	}
	switch {
	case done && en != nil:
		return appliedClosed
	case done:
		return appliedFinished
	}
	return appliedListed
}

// memorySince is the moment from which the store remembers every job that
// finished: the tombstones' age, and not before the projection started.
func (s *store) memorySince(now time.Time) time.Time {
	from := now.Add(-s.tombs.ttl)
	if from.Before(s.since) {
		return s.since
	}
	return from
}

// startMemory records that the store remembers finished jobs from now on.
func (s *store) startMemory(now time.Time) {
	s.mu.Lock()
	if s.since.IsZero() {
		s.since = now
	}
	s.mu.Unlock()
}

// applyHistory folds the whole known history of one job, as read from the
// log, into the list, and reports whether the job is finished.
func (s *store) applyHistory(key events.JobKey, evs []events.Event, now time.Time) (done bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.foldHistory(key, evs, now)
}

// foldHistory is applyHistory with s.mu held.
func (s *store) foldHistory(key events.JobKey, evs []events.Event, now time.Time) (done bool) {
	en := s.jobs[key]
	if en == nil && s.tombs.has(key) {
		return true // finished since the history was read
	}
	return s.update(key, en, now, func(j *events.Job) {
		for i := range evs {
			j.Apply(&evs[i])
		}
	})
}

// update applies fold to the job (en is nil for a job not listed yet),
// brings the slice, the tombstones and the ring up to date, and reports
// whether the job is finished. s.mu is held.
func (s *store) update(key events.JobKey, en *entry, now time.Time, fold func(*events.Job)) (done bool) {
	if en == nil {
		return s.add(key, now, fold)
	}
	before := en.job
	prev := s.slots[en.idx].a
	fold(&en.job)
	if sameJob(&before, &en.job) {
		return false
	}
	if en.job.Done() {
		if !s.quiet {
			s.loss.closed(&en.job)
		}
		s.remove(en, now)
		if !s.quiet {
			s.publish(&change{key: key, before: prev, had: true, done: true, view: &view{job: en.job}})
		}
		return true
	}
	a := s.attrsOf(&en.job, &before, &prev, s.isStale(&en.job, now))
	s.setAttrs(en.idx, a)
	if a.text != prev.text {
		s.sigs[en.idx] = signatureOf(&a.text)
		if s.index != nil {
			s.index.replace(en.id, &prev.text, &a.text)
		} else {
			s.noteText(en.id)
		}
	}
	if !s.quiet {
		s.publish(&change{key: key, before: prev, had: true, after: a, has: true, view: &view{job: en.job, stale: a.stale}})
	}
	return false
}

func (s *store) add(key events.JobKey, now time.Time, fold func(*events.Job)) (done bool) {
	en := &entry{job: events.Job{Key: key}}
	fold(&en.job)
	if en.job.Done() {
		s.tombs.add(key, now)
		return true
	}
	if en.job.LastSeen.IsZero() {
		return false // no event of this job was applied
	}
	a := s.attrsOf(&en.job, nil, nil, s.isStale(&en.job, now))
	s.insert(en, a)
	if !s.quiet {
		s.publish(&change{key: key, after: a, has: true, view: &view{job: en.job, stale: a.stale}})
	}
	return false
}

// insert puts a job not in the store yet, with its attributes, at the end
// of the dense slice. s.mu is held.
func (s *store) insert(en *entry, a attrs) {
	en.idx, en.id = len(s.slots), s.ids.take()
	s.appendSlot(slot{a: a, e: en, id: en.id})
	s.jobs[en.job.Key] = en
	if s.index != nil {
		s.index.add(en.id, &a.text)
	} else {
		s.noteText(en.id)
	}
	if s.ranking != nil {
		s.place(en)
	}
}

// remove takes a finished job out of the list and remembers it.
func (s *store) remove(en *entry, now time.Time) {
	if s.index != nil {
		s.index.remove(en.id, &s.slots[en.idx].a.text)
	} else {
		s.noteText(en.id)
	}
	if s.ranking != nil {
		s.unplace(en)
	}
	s.ids.give(en.id)
	s.removeSlot(en.idx)
	delete(s.jobs, en.job.Key)
	s.tombs.add(en.job.Key, now)
}

func (s *store) isStale(j *events.Job, now time.Time) bool {
	return now.Sub(j.LastSeen) > s.staleAfter
}

// publish hands c to the live stream. Its callers test s.quiet first, so
// that a quiet store (a rebuild) does not even build its changes: a change
// holds a copy of its job.
func (s *store) publish(c *change) {
	s.changes.publish(c)
}

// sweep flags the jobs that have had no news for too long, and unflags any
// that had, and forgets expired tombstones. It returns how many jobs changed.
func (s *store) sweep(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tombs.expire(now)
	n := 0
	for i := range s.slots {
		sl := &s.slots[i]
		stale := s.isStale(&sl.e.job, now)
		if stale == sl.a.stale {
			continue
		}
		prev := sl.a
		sl.a.stale = stale
		if !s.quiet {
			s.publish(&change{key: sl.e.job.Key, before: prev, had: true, after: sl.a, has: true, view: &view{job: sl.e.job, stale: stale}})
		}
		n++
	}
	return n
}

// get returns a copy of one listed job.
// listed reports whether the job is in the list.
func (s *store) listed(key events.JobKey) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.jobs[key] != nil
}

func (s *store) get(key events.JobKey) (view, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	en := s.jobs[key]
	if en == nil {
		return view{}, false
	}
	return view{job: en.job, stale: s.slots[en.idx].a.stale}, true
}

// snapshot returns every job matching f at now, in the API's shape, and the
// seq of the newest change they reflect.
func (s *store) snapshot(f *filter, now time.Time, preview int) ([]*jobJSON, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := f.resolve(&s.dicts, now)
	var out []*jobJSON
	for i := range s.slots {
		sl := &s.slots[i]
		if m.match(&sl.a) {
			out = append(out, jobOf(&view{job: sl.e.job, stale: sl.a.stale, hidden: m.hidden(&sl.a, &sl.e.job)}, preview))
		}
	}
	return out, s.changes.current()
}

// crossings returns the jobs that match f at to but not at from: those whose
// running time reached f's min_running in between. With them comes the seq
// of the newest change they reflect.
func (s *store) crossings(f *filter, from, to time.Time, preview int) ([]*jobJSON, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	before, after := f.resolve(&s.dicts, from), f.resolve(&s.dicts, to)
	var out []*jobJSON
	for i := range s.slots {
		sl := &s.slots[i]
		if after.match(&sl.a) && !before.match(&sl.a) {
			out = append(out, jobOf(&view{job: sl.e.job, stale: sl.a.stale, hidden: after.hidden(&sl.a, &sl.e.job)}, preview))
		}
	}
	return out, s.changes.current()
}
