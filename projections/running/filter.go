package running

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/projections/access"
)

// dimParams names the query parameter of each dimension.
var dimParams = [numDims]string{
	dimProject:     "project",
	dimLocation:    "location",
	dimUser:        "user",
	dimReservation: "reservation",
	dimType:        "type",
	dimStatement:   "statement_type",
}

// filterParams are the query parameters the list and the stream share.
var filterParams = append(dimParams[:], "state", "label", "min_running", "q")

// Bounds of the free-text search.
const (
	maxSearchBytes = 1000
	maxSearchTerms = 16
)

// filter is a set of conditions on jobs, all of which a job must meet: the
// request's own, and its caller's scope (which jobs it may see, and whose
// query text it may search).
type filter struct {
	dims       [numDims]string // wanted value of each dimension, "" for any
	state      stateCode       // codeUnknown for any
	labels     []labelCond
	minRunning time.Duration // 0 for none
	terms      []string      // lower-cased words the search text must all contain
	scope      access.Scope
}

type labelCond struct{ key, value string }

// paramError is one bad query parameter.
type paramError struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// problems collects the bad parameters of a request.
type problems []paramError

func (p *problems) add(name, format string, args ...any) {
	*p = append(*p, paramError{Name: name, Reason: fmt.Sprintf(format, args...)})
}

// parseFilter reads the filter parameters of q for a list of kind k,
// adding every bad one to bad.
func parseFilter(q url.Values, k *listKind, bad *problems) filter {
	var f filter
	fail := bad.add
	for i, name := range dimParams {
		f.dims[i], _ = single(q, name, fail)
	}
	if t := f.dims[dimType]; t != "" && !oneOf(t, "query", "load", "extract", "copy") {
		fail("type", "must be one of query, load, extract, copy")
	}
	f.state = parseState(q, k, fail)
	f.labels = parseLabels(q, fail)
	f.minRunning = parseMinRunning(q, fail)
	f.terms = parseSearch(q, fail)
	return f
}

// single returns the one value of a parameter that may be given once.
func single(q url.Values, name string, fail func(name, format string, args ...any)) (string, bool) {
	vs, ok := q[name]
	if !ok {
		return "", false
	}
	if len(vs) > 1 {
		fail(name, "must be given at most once")
	}
	return strings.TrimSpace(vs[0]), true
}

func oneOf(v string, options ...string) bool {
	for _, o := range options {
		if strings.EqualFold(v, o) {
			return true
		}
	}
	return false
}

func parseState(q url.Values, k *listKind, fail func(name, format string, args ...any)) stateCode {
	v, _ := single(q, "state", fail)
	if v == "" {
		return codeUnknown
	}
	code, ok := k.state(v)
	if !ok {
		fail("state", "must be %s", k.stateNames())
	}
	return code
}

func parseLabels(q url.Values, fail func(name, format string, args ...any)) []labelCond {
	var ls []labelCond
	for _, l := range q["label"] {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			fail("label", "%q is not key=value", l)
			continue
		}
		ls = append(ls, labelCond{key: k, value: v})
	}
	return ls
}

func parseMinRunning(q url.Values, fail func(name, format string, args ...any)) time.Duration {
	v, _ := single(q, "min_running", fail)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		fail("min_running", "%q is not a non-negative duration such as 90s or 1h30m", v)
		return 0
	}
	return d
}

func parseSearch(q url.Values, fail func(name, format string, args ...any)) []string {
	v, _ := single(q, "q", fail)
	if len(v) > maxSearchBytes {
		fail("q", "is longer than %d bytes", maxSearchBytes)
		return nil
	}
	terms := strings.Fields(strings.ToLower(v))
	if len(terms) > maxSearchTerms {
		fail("q", "has more than %d words", maxSearchTerms)
		return nil
	}
	return terms
}

// matcher is a filter resolved against the dictionaries at one moment.
type matcher struct {
	want      [numDims]uint32
	on        [numDims]bool
	none      bool // a wanted value was never seen, or the caller sees nothing: nothing matches
	state     stateCode
	labels    []labelCond
	minimum   bool  // min_running is set
	startedBy int64 // a running job must have started at or before this (ms)
	ranFor    int64 // a finished job must have run at least this long (ms)
	terms     []string
	sig       signature // byte pairs of the terms
	owner     uint32    // with ownerOn, the only user whose jobs match
	ownerOn   bool
	hiding    bool   // the query text of jobs not run by reader is hidden
	reader    uint32 // with readerOK, the caller as a user
	readerOK  bool
}

// resolve turns the filter into a matcher for the moment now.
func (f *filter) resolve(dicts *[numDims]*dict, now time.Time) matcher {
	m := matcher{state: f.state, labels: f.labels, terms: f.terms, none: f.scope.SeesNothing()}
	for _, t := range f.terms {
		m.sig.addPairs(t)
	}
	for i, v := range f.dims {
		if v == "" {
			continue
		}
		id, ok := dicts[i].lookup(v)
		m.want[i], m.on[i], m.none = id, true, m.none || !ok
	}
	if f.minRunning > 0 {
		m.minimum, m.startedBy, m.ranFor = true, now.Add(-f.minRunning).UnixMilli(), f.minRunning.Milliseconds()
	}
	m.resolveScope(f.scope, dicts[dimUser])
	return m
}

// resolveScope adds the caller's scope: an own caller matches only the
// jobs that ran as it (none before any did), and a caller who may not read
// other people's query text reads, and searches, only its own.
func (m *matcher) resolveScope(sc access.Scope, users *dict) {
	if owner, ok := sc.Owner(); ok {
		id, seen := users.lookup(owner)
		m.owner, m.ownerOn, m.none = id, true, m.none || !seen || owner == ""
	}
	if sc.HidesQueries() {
		m.hiding = true
		if r := sc.Reader(); r != "" {
			m.reader, m.readerOK = users.lookup(r)
		}
	}
}

// hides reports whether the caller may not read the query text of the job
// with attributes a.
func (m *matcher) hides(a *attrs) bool { return m.hidesFor(a.dim[dimUser]) }

// hidesFor reports whether the caller may not read the query text of the
// jobs of the user with id user.
func (m *matcher) hidesFor(user uint32) bool {
	return m.hiding && !(m.readerOK && user == m.reader)
}

// hidden reports whether the API leaves out the query text of job j, with
// attributes a: it has one that the caller may not read.
func (m *matcher) hidden(a *attrs, j *events.Job) bool {
	return j.Query != "" && m.hides(a)
}

// match reports whether a job meets every condition, cheapest first.
func (m *matcher) match(a *attrs) bool {
	return m.matchFacts(a) && m.matchText(a)
}

// matchFacts tests every condition but the search.
func (m *matcher) matchFacts(a *attrs) bool {
	return m.matchRow(&a.dim, a.state) && m.matchMore(a)
}

// matchRow tests the conditions on a job's dimensions and state, which a
// row holds.
func (m *matcher) matchRow(dim *[numDims]uint32, state stateCode) bool {
	if m.none || m.ownerOn && dim[dimUser] != m.owner {
		return false
	}
	for i := range m.on {
		if m.on[i] && dim[i] != m.want[i] {
			return false
		}
	}
	return m.state == codeUnknown || state == m.state
}

// narrowed reports whether m has a condition the postings answer (on a
// dimension, the state or the caller's own jobs).
func (m *matcher) narrowed() bool {
	return m.ownerOn || m.state != codeUnknown || slices.Contains(m.on[:], true)
}

// more reports whether m has conditions beyond those matchRow tests.
func (m *matcher) more() bool { return m.minimum || len(m.labels) > 0 }

// matchMore tests the conditions matchRow does not: running time and
// labels.
func (m *matcher) matchMore(a *attrs) bool {
	if m.minimum && !m.ranLongEnough(a) {
		return false
	}
	for _, l := range m.labels {
		if v, ok := a.labels[l.key]; !ok || v != l.value {
			return false
		}
	}
	return true
}

// ranLongEnough tests min_running: a running job by when it started, a
// finished one by how long it ran.
func (m *matcher) ranLongEnough(a *attrs) bool {
	start, ok := a.val(valStarted)
	if !ok {
		return false
	}
	if end, done := a.val(valEnded); done {
		return end-start >= m.ranFor
	}
	return start <= m.startedBy
}

// matchText tests the search: every term is in the search text, without
// the query text when the caller may not read it.
func (m *matcher) matchText(a *attrs) bool {
	return m.matchTerms(a, m.terms)
}

// matchTerms tests the search for the terms ts only.
func (m *matcher) matchTerms(a *attrs, ts []string) bool {
	publicOnly := len(ts) > 0 && m.hides(a)
	for _, t := range ts {
		if !a.text.contains(t, publicOnly) {
			return false
		}
	}
	return true
}
