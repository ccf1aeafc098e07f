package running

import (
	"slices"
	"strings"
)

// listKind is what tells apart the two lists the API serves with one
// machinery (filter, search, order, cursor, page): the running list of
// GET /api/v1/jobs and the stream, and the finished jobs of a time range of
// GET /api/v1/history. They differ only in the states a job can be in, the
// orders that make sense and whether a page belongs to a time range.
type listKind struct {
	// states are the values of the state filter, as the API names them.
	states []namedState
	// sorts are the sort keys, in the order the API documents them.
	sorts []sortKey
	// order is the order of a request that names none.
	order order
	// spanned lists belong to a time range, which their cursors carry.
	spanned bool
}

type namedState struct {
	name string
	code stateCode
}

// runningKind is the running list's: jobs not yet DONE.
var runningKind = &listKind{
	states: []namedState{{"pending", codePending}, {"running", codeRunning}},
	sorts:  []sortKey{sortRunning, sortCreated, sortStarted, sortSlotMs, sortBytes},
	order:  order{key: sortRunning, desc: true},
}

// historyKind is the history's: DONE jobs, which succeeded or failed, most
// recently finished first.
var historyKind = &listKind{
	states:  []namedState{{"succeeded", codeSucceeded}, {"failed", codeFailed}},
	sorts:   []sortKey{sortEnded, sortRunning, sortCreated, sortStarted, sortSlotMs, sortBytes},
	order:   order{key: sortEnded, desc: true},
	spanned: true,
}

// state returns the code of a state named name (any case).
func (k *listKind) state(name string) (stateCode, bool) {
	for _, s := range k.states {
		if strings.EqualFold(s.name, name) {
			return s.code, true
		}
	}
	return codeUnknown, false
}

// stateNames lists the states for a message: "pending or running".
func (k *listKind) stateNames() string {
	names := make([]string, len(k.states))
	for i, s := range k.states {
		names[i] = s.name
	}
	return strings.Join(names, " or ")
}

// sorted reports whether the list can be sorted by key.
func (k *listKind) sorted(key sortKey) bool { return slices.Contains(k.sorts, key) }

// sortNames lists the sort keys for a message: "running, created, …".
func (k *listKind) sortNames() string {
	names := make([]string, len(k.sorts))
	for i, s := range k.sorts {
		names[i] = order{key: s}.String()
	}
	return strings.Join(names, ", ")
}
