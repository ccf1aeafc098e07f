package running

import (
	"maps"
	"slices"
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
	// text is what the q parameter searches.
	text searchText
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
		a.text = prevA.text
	} else {
		a.text = searchTextOf(j)
	}
	return a
}

func sameSearchable(a, b *events.Job) bool {
	return a.Key.JobID == b.Key.JobID && a.Principal == b.Principal && a.Query == b.Query &&
		a.DestinationTable == b.DestinationTable && slices.Equal(a.ReferencedTables, b.ReferencedTables) &&
		slices.Equal(a.SourceTables, b.SourceTables) && maps.Equal(a.Labels, b.Labels)
}
