package running

import (
	"strings"
	"sync"
)

// dict interns the values of one dimension (projects, users, ...) as small
// integers, so that filtering and grouping compare integers. Values are
// matched without regard to case; id 0 is the empty (unknown) value. Ids are
// never reused, so an id read once keeps its meaning; the dictionary holds
// every distinct value seen since start, which the organization's projects,
// users, reservations and locations bound.
type dict struct {
	mu    sync.RWMutex
	exact map[string]uint32 // every spelling seen
	folds map[string]uint32 // lower-cased value
	names []string          // first spelling seen, by id
}

func newDict() *dict {
	return &dict{exact: map[string]uint32{"": 0}, folds: map[string]uint32{"": 0}, names: []string{""}}
}

// intern returns the id of s, adding it if it is new.
func (d *dict) intern(s string) uint32 {
	d.mu.RLock()
	id, ok := d.exact[s]
	d.mu.RUnlock()
	if ok {
		return id
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fold := strings.ToLower(s)
	id, ok = d.folds[fold]
	if !ok {
		id = uint32(len(d.names))
		d.names = append(d.names, s)
		d.folds[fold] = id
	}
	d.exact[s] = id
	return id
}

// lookup returns the id of a value equal to s without regard to case, and
// whether there is one.
func (d *dict) lookup(s string) (uint32, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if id, ok := d.exact[s]; ok {
		return id, true
	}
	id, ok := d.folds[strings.ToLower(s)]
	return id, ok
}

// name returns the first spelling seen of the value with the given id.
func (d *dict) name(id uint32) string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.names[id]
}

// size returns how many ids have been given out, the empty value included.
func (d *dict) size() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.names)
}
