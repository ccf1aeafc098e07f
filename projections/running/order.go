package running

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// sortKey is what the list can be sorted by.
type sortKey int

const (
	sortRunning sortKey = iota
	sortCreated
	sortStarted
	sortSlotMs
	sortBytes
	sortEnded
)

var sortNames = map[string]sortKey{
	"running": sortRunning,
	"created": sortCreated,
	"started": sortStarted,
	"slot_ms": sortSlotMs,
	"bytes":   sortBytes,
	"ended":   sortEnded,
}

// order is a sort key and a direction. Jobs whose value is unknown come last
// in either direction; ties are broken by project/location/job_id ascending,
// so the order is total and a cursor names one position in it.
type order struct {
	key  sortKey
	desc bool
}

// parseOrder reads a sort parameter of a list of kind k.
func parseOrder(s string, k *listKind) (order, error) {
	name, desc := strings.CutPrefix(s, "-")
	key, ok := sortNames[name]
	if !ok || !k.sorted(key) {
		return order{}, fmt.Errorf("must be one of %s, optionally prefixed by - for descending", k.sortNames())
	}
	return order{key: key, desc: desc}, nil
}

func (o order) String() string {
	for name, k := range sortNames {
		if k == o.key {
			if o.desc {
				return "-" + name
			}
			return name
		}
	}
	return ""
}

// sortVals names the value each sort key but running sorts by.
var sortVals = [...]int{sortCreated: valCreated, sortStarted: valStarted, sortSlotMs: valSlotMs, sortBytes: valBytes, sortEnded: valEnded}

// valueAt returns the value the job in slot i of a store, whose known
// values are known, is sorted by, from the store's columns of values. A
// running job's running time grows as its start time falls, so it sorts by
// the start time negated, which does not change as the clock moves; a
// finished job's is fixed, from its start to its end. One list never holds
// both.
func (o order) valueAt(vals *[numVals][]int64, i int, known uint8) (int64, bool) {
	if o.key != sortRunning {
		k := sortVals[o.key]
		return vals[k][i], known&(1<<k) != 0
	}
	v, ok := vals[valStarted][i], known&(1<<valStarted) != 0
	if known&(1<<valEnded) != 0 {
		return vals[valEnded][i] - v, ok
	}
	return -v, ok
}

// position is a place in an order: a value (or unknown) and a job, named
// by key or, for a listed job, by its slot. The slot's key is read only to
// break ties: reading it for every job would touch every entry. In a store
// that ranks its jobs, ties compare ranks instead, and a position that
// names a job no longer listed (a cursor's) falls just after the rank of
// the job before it (half).
type position struct {
	v      int64
	known  bool
	key    *events.JobKey
	slot   *slot
	ranked bool
	rank   uint64
	half   bool
}

// positionAt returns the position of the job in slot i of st, whose value
// is v (if known).
func (o order) positionAt(st *store, i int, v int64, known bool) position {
	p := position{v: v, known: known, slot: &st.slots[i]}
	if st.ranking != nil {
		p.ranked, p.rank = true, st.ranks[i]
	}
	return p
}

func (p *position) jobKey() *events.JobKey {
	if p.key != nil {
		return p.key
	}
	return &p.slot.e.job.Key
}

// afterByValue reports whether a job whose value is v (if known) comes
// after the position p by its value alone, whatever its id.
func (o order) afterByValue(v int64, known bool, p *position) bool {
	switch {
	case known != p.known:
		return p.known
	case !known || v == p.v:
		return false
	case o.desc:
		return v < p.v
	}
	return v > p.v
}

// compare orders two positions.
func (o order) compare(a, b position) int {
	if a.known != b.known {
		if a.known {
			return -1
		}
		return 1
	}
	if a.known && a.v != b.v {
		if o.desc {
			return cmp.Compare(b.v, a.v)
		}
		return cmp.Compare(a.v, b.v)
	}
	if a.ranked && b.ranked {
		if a.rank != b.rank {
			return cmp.Compare(a.rank, b.rank)
		}
		return compareBools(a.half, b.half)
	}
	return compareIDs(a.jobKey(), b.jobKey())
}

// compareBools orders false before true.
func compareBools(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// compareIDs orders jobs as the strings project/location/job_id would,
// without building them.
func compareIDs(a, b *events.JobKey) int {
	for _, seg := range [2][2]string{{a.Project, b.Project}, {a.Location, b.Location}} {
		c, decided, clear := compareSegment(seg[0], seg[1])
		if !clear {
			return strings.Compare(idOf(a), idOf(b))
		}
		if decided {
			return c
		}
	}
	return strings.Compare(a.JobID, b.JobID)
}

// compareSegment compares a+"/" with b+"/": decided when they differ, and
// not clear when a "/" inside one of them makes the joined strings needed.
func compareSegment(a, b string) (c int, decided, clear bool) {
	if a == b {
		return 0, false, true
	}
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return cmp.Compare(a[i], b[i]), true, true
		}
	}
	if len(a) < len(b) {
		return cmp.Compare(byte('/'), b[n]), true, b[n] != '/'
	}
	return cmp.Compare(a[n], byte('/')), true, a[n] != '/'
}

// idOf is how the API and the page name a job: project/location/job_id.
func idOf(k *events.JobKey) string { return k.Project + "/" + k.Location + "/" + k.JobID }

// cursor is the position of the last job of a page, in the order of that
// page; the next page starts strictly after it. A page of a time range's
// list (the history) carries the range, so that every page of it reads the
// same range whenever it is asked for.
type cursor struct {
	order order
	pos   position
	span  *span // nil for the running list
}

type cursorWire struct {
	Sort     string     `json:"s"`
	Value    *int64     `json:"v,omitempty"`
	Project  string     `json:"p"`
	Location string     `json:"l"`
	JobID    string     `json:"j"`
	From     *time.Time `json:"f,omitempty"`
	To       *time.Time `json:"t,omitempty"`
}

func (c cursor) String() string {
	k := c.pos.jobKey()
	w := cursorWire{Sort: c.order.String(), Project: k.Project, Location: k.Location, JobID: k.JobID}
	if c.pos.known {
		w.Value = &c.pos.v
	}
	if c.span != nil {
		w.From, w.To = &c.span.from, &c.span.to
	}
	b, _ := json.Marshal(w) // strings, an integer and a span's times (years 1-9999) always encode
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseCursor reads a cursor made by cursor.String for the order o.
func parseCursor(s string, o order) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, errors.New("is not a cursor returned by this API")
	}
	var w cursorWire
	if err := json.Unmarshal(b, &w); err != nil || w.JobID == "" {
		return cursor{}, errors.New("is not a cursor returned by this API")
	}
	if w.Sort != o.String() {
		return cursor{}, fmt.Errorf("was made for sort %s, not %s", w.Sort, o)
	}
	c := cursor{order: o, pos: position{key: &events.JobKey{Project: w.Project, Location: w.Location, JobID: w.JobID}}}
	if w.Value != nil {
		c.pos.v, c.pos.known = *w.Value, true
	}
	if (w.From == nil) != (w.To == nil) {
		return cursor{}, errors.New("is not a cursor returned by this API")
	}
	if w.From != nil {
		c.span = &span{from: *w.From, to: *w.To}
	}
	return c, nil
}
