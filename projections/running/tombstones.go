package running

import (
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// tombstones remember the jobs that finished recently, so that a late
// duplicate of one of their events does not list them again. Memory grows
// with the rate at which jobs finish times the TTL.
type tombstones struct {
	ttl   time.Duration
	at    map[events.JobKey]time.Time
	queue []tombstone // in the order added
	head  int
}

type tombstone struct {
	key events.JobKey
	at  time.Time
}

func newTombstones(ttl time.Duration) tombstones {
	return tombstones{ttl: ttl, at: map[events.JobKey]time.Time{}}
}

func (t *tombstones) has(key events.JobKey) bool {
	_, ok := t.at[key]
	return ok
}

func (t *tombstones) add(key events.JobKey, now time.Time) {
	t.at[key] = now
	t.queue = append(t.queue, tombstone{key: key, at: now})
}

// expire forgets the tombstones older than the TTL.
func (t *tombstones) expire(now time.Time) {
	limit := now.Add(-t.ttl)
	for t.head < len(t.queue) && t.queue[t.head].at.Before(limit) {
		ts := t.queue[t.head]
		if at, ok := t.at[ts.key]; ok && !at.After(ts.at) {
			delete(t.at, ts.key)
		}
		t.queue[t.head] = tombstone{}
		t.head++
	}
	if t.head > 1024 && t.head*2 > len(t.queue) {
		t.queue = append(t.queue[:0:0], t.queue[t.head:]...)
		t.head = 0
	}
}
