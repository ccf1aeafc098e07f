package bus

import (
	"sync"
	"time"
)

// Echo follows the events this process publishes on the events topic until
// its own per-replica consumer receives them back, so that a live feed
// that stalls shows in its Lag. Lag measures what arrives: a pull stream
// that receives nothing (a subscription deleted under it, a stream stuck
// in the client) looks like a quiet topic. Every replica's subscription
// receives every event, this replica's own among them, so an event this
// process published and its feed has not received after some time is the
// one sign a replica has of its own feed stalling, without knowing the
// rate of the audit log. It cannot see a stall while nothing is published
// (no entries come in): then the list has nothing to miss from this
// replica, though it may from others.
//
// The appender reports each event as it starts to publish it (a message can
// arrive before its publisher hears that it was published) and each
// publication that failed; the consumer arms the
// echo once its subscription exists (events published before could never
// arrive) and reports each message it receives, handled or not. Behind is
// the age of the oldest published event not received back. When the
// consumer's subscription is created again (what was published meanwhile
// is lost to it, and a resync reads it from the log instead), Reset
// forgets every event published so far. At most maxEchoed events are
// followed at once; past that, newer ones are not (the oldest are what
// Behind reports). An Echo is safe for concurrent use; a nil *Echo follows
// nothing.
type Echo struct {
	now func() time.Time

	mu      sync.Mutex
	armed   bool
	pending map[string]time.Time // event id → when it was published
	queue   []echoed             // in publication order; entries received since are skipped
	head    int
}

type echoed struct {
	id string
	at time.Time
}

// maxEchoed bounds the events an Echo follows at once: about 13 seconds of
// 5,000 events a second, and a few MB.
const maxEchoed = 1 << 16

// NewEcho returns an Echo that follows nothing until armed.
func NewEcho() *Echo { return &Echo{now: time.Now, pending: map[string]time.Time{}} }

// publishing records that the events of ids are being published now.
func (e *Echo) publishing(ids []string) {
	if e == nil || len(ids) == 0 {
		return
	}
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.armed {
		return
	}
	if len(e.queue)-e.head >= 2*maxEchoed {
		e.compact()
	}
	for _, id := range ids {
		if len(e.pending) >= maxEchoed {
			return
		}
		if _, ok := e.pending[id]; !ok {
			e.pending[id] = now
			e.queue = append(e.queue, echoed{id: id, at: now})
		}
	}
}

// received records that the consumer received the event id.
func (e *Echo) received(id string) {
	if e == nil || id == "" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.pending, id)
}

// failed records that publishing the events of ids failed: they are not
// expected back (and if one was published after all, its arrival changes
// nothing).
func (e *Echo) failed(ids []string) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range ids {
		delete(e.pending, id)
	}
}

// arm starts following publications.
func (e *Echo) arm() {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.armed = true
}

// Reset forgets every event published so far: the consumer's subscription
// was created again, and what was published before cannot arrive on it.
func (e *Echo) Reset() {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.pending)
	e.queue, e.head = e.queue[:0], 0
}

// Behind returns the age at now of the oldest event published and not
// received back, or 0.
func (e *Echo) Behind(now time.Time) time.Duration {
	if e == nil {
		return 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for ; e.head < len(e.queue); e.head++ {
		q := e.queue[e.head]
		if at, ok := e.pending[q.id]; ok && at.Equal(q.at) {
			break
		}
	}
	if e.head > 1024 && e.head > len(e.queue)/2 {
		e.compact()
	}
	if e.head == len(e.queue) {
		return 0
	}
	return max(now.Sub(e.queue[e.head].at), 0)
}

// compact drops the queue's entries of events received since, so that the
// queue holds no more than the events followed. e.mu is held.
func (e *Echo) compact() {
	kept := e.queue[:0]
	for _, q := range e.queue[e.head:] {
		if at, ok := e.pending[q.id]; ok && at.Equal(q.at) {
			kept = append(kept, q)
		}
	}
	clear(e.queue[len(kept):]) // let the ids go
	e.queue, e.head = kept, 0
}
