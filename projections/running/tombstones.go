package running

import (
	"hash/maphash"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// tombstones remember the jobs that finished recently, so that a late
// duplicate of one of their events does not list them again. Memory grows
// with the rate at which jobs finish times the TTL, so a tombstone is small:
// a 64-bit hash of the job's key (with a seed of the process's own) and a
// time, not the key's strings, some 40 bytes a job with the map and the
// queue, against some 300 before (the queue and map of keys reached 36 MB
// at 50 jobs/s). Two keys share a hash with a probability of about 2^-64 a
// pair: with 200,000 tombstones, a running job is taken for finished about
// once in 10^14 lookups.
type tombstones struct {
	ttl   time.Duration
	seed  maphash.Seed
	at    map[uint64]int64 // key hash → when the job finished (Unix ns)
	queue []tombstone      // in the order added
	head  int

	// The projects of the jobs in the queue, for RecentProjects: each
	// project once, with how many queued tombstones name it.
	projects map[string]uint32 // project → its number
	names    []string          // by number
	counts   []int             // by number
}

type tombstone struct {
	hash    uint64
	at      int64
	project uint32
}

func newTombstones(ttl time.Duration) tombstones {
	return tombstones{ttl: ttl, seed: maphash.MakeSeed(), at: map[uint64]int64{}, projects: map[string]uint32{}}
}

func (t *tombstones) hash(key events.JobKey) uint64 { return maphash.Comparable(t.seed, key) }

func (t *tombstones) has(key events.JobKey) bool {
	_, ok := t.at[t.hash(key)]
	return ok
}

func (t *tombstones) add(key events.JobKey, now time.Time) {
	h, at := t.hash(key), now.UnixNano()
	t.at[h] = at
	p, ok := t.projects[key.Project]
	if !ok {
		p = uint32(len(t.names))
		t.projects[key.Project] = p
		t.names = append(t.names, key.Project)
		t.counts = append(t.counts, 0)
	}
	t.counts[p]++
	t.queue = append(t.queue, tombstone{hash: h, at: at, project: p})
}

// expire forgets the tombstones older than the TTL.
func (t *tombstones) expire(now time.Time) {
	limit := now.Add(-t.ttl).UnixNano()
	for t.head < len(t.queue) && t.queue[t.head].at < limit {
		ts := t.queue[t.head]
		if at, ok := t.at[ts.hash]; ok && at <= ts.at {
			delete(t.at, ts.hash)
		}
		t.counts[ts.project]--
		t.queue[t.head] = tombstone{}
		t.head++
	}
	if t.head > 1024 && t.head*2 > len(t.queue) {
		t.queue = append(t.queue[:0:0], t.queue[t.head:]...)
		t.head = 0
	}
}

// eachProject calls f with every project that has a tombstone.
func (t *tombstones) eachProject(f func(string)) {
	for p, n := range t.counts {
		if n > 0 {
			f(t.names[p])
		}
	}
}
