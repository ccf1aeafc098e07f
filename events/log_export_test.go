package events

import "cloud.google.com/go/bigtable"

// Internals for the external tests and benchmarks of the log.

// EncodeEvent is encodeEvent: the cell value of an event.
var EncodeEvent = encodeEvent

// TimeRowKey is timeRowKey: the key of an event's time row.
var TimeRowKey = timeRowKey

// RowsOf returns the row keys and mutations an Append of evs writes.
func RowsOf(evs []Event) ([]string, []*bigtable.Mutation, error) {
	rows, err := buildRows(evs)
	if err != nil {
		return nil, nil, err
	}
	keys := make([]string, len(rows))
	muts := make([]*bigtable.Mutation, len(rows))
	for i, r := range rows {
		keys[i], muts[i] = r.key, r.mut
	}
	return keys, muts, nil
}
