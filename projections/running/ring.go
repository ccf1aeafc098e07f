package running

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"

	"github.com/bqobserver/bqobserver/events"
)

// change is one change to the list: a job added, changed or removed. It
// keeps the job's attributes before and after, so that each filtered stream
// can tell whether the job entered, changed within or left its own view.
type change struct {
	seq      uint64
	key      events.JobKey
	before   attrs
	after    attrs
	had, has bool // whether the job was listed before and after
	done     bool // the job left because it finished
	view     *view

	// The change's data as streams send it, encoded once, by the first
	// stream that needs it: with the query text, and without it for the
	// callers who may not read it (indexed by hidden).
	job, removed [2]lazy
}

// lazy is data encoded once, when first needed.
type lazy struct {
	once sync.Once
	data []byte
}

func (l *lazy) get(encode func() []byte) []byte {
	l.once.Do(func() { l.data = encode() })
	return l.data
}

// index is 1 for hidden, 0 otherwise.
func index(hidden bool) int {
	if hidden {
		return 1
	}
	return 0
}

// jobData is the job after the change, for added and changed events, its
// query text left out when hidden.
func (c *change) jobData(preview int, hidden bool) []byte {
	return c.job[index(hidden)].get(func() []byte {
		return appendJobOrError(nil, &c.view.job, c.view.stale, hidden, preview)
	})
}

// removedData is the data of a removed event: {"key", "reason", "job"},
// where reason is "done" (the job finished) or "unmatched" (it no longer
// matches the stream's filters) and job is its state as it left, its query
// text left out when hidden.
func (c *change) removedData(preview int, hidden bool) []byte {
	return c.removed[index(hidden)].get(func() []byte {
		reason := "unmatched"
		if c.done {
			reason = "done"
		}
		b := appendKey([]byte(`{"key":`), c.key)
		b = appendJobOrError(append(b, `,"reason":"`+reason+`","job":`...), &c.view.job, c.view.stale, hidden, preview)
		return append(b, '}')
	})
}

// ring keeps the most recent changes, numbered in order, for the streams to
// read at their own pace. Its size bounds what a stream may lag: a stream
// that falls further behind is cut, so memory never grows with a slow
// client. Stream ids are "<epoch>-<seq>": the epoch, random per process,
// tells a resumed stream that it was following another instance.
type ring struct {
	epoch string

	mu   sync.Mutex
	buf  []*change
	head uint64 // seq of the newest change; 0 before the first
	subs map[chan struct{}]struct{}
}

func newRing(size int) *ring {
	epoch := strconv.FormatUint(rand.Uint64(), 36)
	return &ring{epoch: epoch, buf: make([]*change, size), subs: map[chan struct{}]struct{}{}}
}

// publish numbers c, keeps it and wakes every stream.
func (r *ring) publish(c *change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.head++
	c.seq = r.head
	r.buf[c.seq%uint64(len(r.buf))] = c
	for ch := range r.subs {
		select {
		case ch <- struct{}{}:
		default: // already woken
		}
	}
}

// subscribe returns a channel that receives a value after every publish
// (coalesced), and the seq of the newest change at that moment.
func (r *ring) subscribe() (chan struct{}, uint64) {
	ch := make(chan struct{}, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subs[ch] = struct{}{}
	return ch, r.head
}

func (r *ring) unsubscribe(ch chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.subs, ch)
}

// since returns up to max changes after seq, in order. ok is false when
// changes after seq have already been overwritten, or seq is in the future.
func (r *ring) since(seq uint64, max int) (cs []*change, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq > r.head || r.head-seq > uint64(len(r.buf)) {
		return nil, false
	}
	for s := seq + 1; s <= r.head && len(cs) < max; s++ {
		cs = append(cs, r.buf[s%uint64(len(r.buf))])
	}
	return cs, true
}

// current returns the seq of the newest change.
func (r *ring) current() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.head
}

// id formats a seq as a stream event id.
func (r *ring) id(seq uint64) string { return r.epoch + "-" + strconv.FormatUint(seq, 10) }

// parseID returns the seq of a stream event id of this ring, and false for
// an id of another instance or a malformed one.
func (r *ring) parseID(id string) (uint64, bool) {
	epoch, seq, ok := strings.Cut(id, "-")
	if !ok || epoch != r.epoch {
		return 0, false
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	return n, err == nil
}
