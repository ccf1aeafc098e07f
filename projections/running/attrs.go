package running

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// The dimensions a job is filtered and grouped by, indexing attrs.dim.
const (
	dimProject = iota
	dimLocation
	dimUser
	dimReservation
	dimType
	dimStatement
	numDims
)

// The numeric values a job is sorted by, indexing attrs.vals.
const (
	valCreated = iota
	valStarted
	valSlotMs
	valBytes
	valEnded // only jobs of the history, which are finished, have it
	numVals
)

// stateCode is a job state in one byte.
type stateCode uint8

const (
	codeUnknown stateCode = iota
	codePending
	codeRunning
	codeSucceeded // DONE without an error
	codeFailed    // DONE with an error, cancelled jobs included
)

func codeOf(j *events.Job) stateCode {
	switch j.State {
	case events.StatePending:
		return codePending
	case events.StateRunning:
		return codeRunning
	case events.StateDone:
		if j.Error != nil {
			return codeFailed
		}
		return codeSucceeded
	}
	return codeUnknown
}

// attrs is what filters, sorts and aggregates read of a job, in a compact,
// immutable value: the store keeps one per job in a dense slice that a list
// request scans, and each change keeps the values before and after it so
// that a filtered stream can tell a job entering its view from one leaving.
// labels and search are shared, never mutated: a change makes new ones.
type attrs struct {
	dim    [numDims]uint32
	vals   [numVals]int64
	known  uint8 // bit i set when vals[i] is known
	state  stateCode
	stale  bool
	labels map[string]string
	// search is the lower-cased text the q parameter searches, the query
	// text last: search[:public] is everything else, what a caller who may
	// not read the query searches.
	search string
	public uint32
}

func (a *attrs) val(i int) (int64, bool) { return a.vals[i], a.known&(1<<i) != 0 }

func (a *attrs) setVal(i int, v int64) {
	a.vals[i] = v
	a.known |= 1 << i
}

// runningMs is how long the job has run at now, if it has started.
func (a *attrs) runningMs(now time.Time) (int64, bool) {
	start, ok := a.val(valStarted)
	if !ok {
		return 0, false
	}
	return max(now.UnixMilli()-start, 0), true
}

// attrsOf derives a job's attributes; prev and its attributes prevA supply
// the search text when the searchable facts did not change, so that it is
// not rebuilt on every event.
func (s *store) attrsOf(j *events.Job, prev *events.Job, prevA *attrs, stale bool) attrs {
	a := attrs{state: codeOf(j), stale: stale, labels: j.Labels}
	a.dim[dimProject] = s.dicts[dimProject].intern(j.Key.Project)
	a.dim[dimLocation] = s.dicts[dimLocation].intern(j.Key.Location)
	a.dim[dimUser] = s.dicts[dimUser].intern(j.Principal)
	a.dim[dimReservation] = s.dicts[dimReservation].intern(j.Reservation)
	a.dim[dimType] = s.dicts[dimType].intern(j.JobType)
	a.dim[dimStatement] = s.dicts[dimStatement].intern(j.StatementType)
	setTime := func(i int, t time.Time) {
		if !t.IsZero() {
			a.setVal(i, t.UnixMilli())
		}
	}
	setTime(valCreated, j.CreateTime)
	setTime(valStarted, j.StartTime)
	if j.SlotMs != nil {
		a.setVal(valSlotMs, *j.SlotMs)
	}
	if j.BytesProcessed != nil {
		a.setVal(valBytes, *j.BytesProcessed)
	}
	if prev != nil && prevA != nil && sameSearchable(prev, j) {
		a.search, a.public = prevA.search, prevA.public
	} else {
		a.search, a.public = searchText(j)
	}
	return a
}

// searchText is what free-text search looks in: the job id, the user, the
// tables, the labels and the query text, lower-cased once here so that no
// request lower-cases them again, and the length of the part before the
// query text. Fields are separated by a NUL byte, which no search term
// contains, so a term never matches across two fields.
func searchText(j *events.Job) (string, uint32) {
	var b strings.Builder
	b.Grow(len(j.Key.JobID) + len(j.Principal) + len(j.Query) + 64)
	for _, s := range []string{j.Key.JobID, j.Principal, j.DestinationTable} {
		b.WriteString(s)
		b.WriteByte(0)
	}
	for _, tables := range [][]string{j.ReferencedTables, j.SourceTables} {
		for _, t := range tables {
			b.WriteString(t)
			b.WriteByte(0)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(j.Labels)) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(j.Labels[k])
		b.WriteByte(0)
	}
	public := strings.ToLower(b.String())
	return public + strings.ToLower(j.Query), uint32(len(public))
}

func sameSearchable(a, b *events.Job) bool {
	return a.Key.JobID == b.Key.JobID && a.Principal == b.Principal && a.Query == b.Query &&
		a.DestinationTable == b.DestinationTable && slices.Equal(a.ReferencedTables, b.ReferencedTables) &&
		slices.Equal(a.SourceTables, b.SourceTables) && maps.Equal(a.Labels, b.Labels)
}
