package events

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/bigtable"
)

// maxBatchBytes bounds the estimated size of one ApplyBulk request, below
// gRPC's default 4 MiB message limit (which in-process servers keep).
const maxBatchBytes = 3 << 20

// cellOverhead estimates the bytes a cell adds to a request beyond its
// qualifier and value (family, timestamp, framing).
const cellOverhead = 24

// The order in which an append writes its rows, so that an append that
// stops between chunks never leaves a running job's events unindexed nor
// drops a job from the index before its DONE event is durable.
const (
	phaseOpen = iota
	phaseEvents
	phaseClose
)

// row is one row of an append: all its cells go in one mutation.
type row struct {
	key   string
	mut   *bigtable.Mutation
	bytes int
	phase int
}

func (r *row) set(family, qualifier string, ts bigtable.Timestamp, value []byte) {
	r.mut.Set(family, qualifier, ts, value)
	r.bytes += len(qualifier) + len(value) + cellOverhead
}

// checkAppend reports every event of evs that cannot be appended.
func checkAppend(evs []Event) error {
	var errs []error
	for i := range evs {
		if err := evs[i].Validate(); err != nil {
			errs = append(errs, err)
		} else if err := checkKeys(&evs[i]); err != nil {
			errs = append(errs, fmt.Errorf("event %q: %w", evs[i].ID, err))
		}
	}
	return errors.Join(errs...)
}

// rowSet merges the cells of an append per row key.
type rowSet struct {
	rows  []*row
	byKey map[string]*row
	jobs  []JobKey
	open  map[JobKey]*openMark
}

// openMark is what an append does to a job's index entry: set it with the
// latest timestamp of the job's events that are not DONE, or, if any event
// is DONE, remove it (DONE is terminal, so it wins).
type openMark struct {
	done            bool
	ts              bigtable.Timestamp
	jobRow, openRow string
}

// buildRows turns checked events into the rows to write, in phase order.
// An event that cannot be encoded is an error matching ErrInvalid.
func buildRows(evs []Event) ([]*row, error) {
	s := &rowSet{byKey: make(map[string]*row, 2*len(evs)), open: make(map[JobKey]*openMark)}
	for i := range evs {
		if err := s.add(&evs[i]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	s.addOpenRows()
	return s.ordered(), nil
}

func (s *rowSet) add(e *Event) error {
	timeKey := timeRowKey(e.Time, e.ID)
	qualifier := timeKey[shardPrefixLen:] // the time row key ends with it
	if _, dup := s.byKey[timeKey]; dup {
		return nil // the same event twice in one append
	}
	value, err := encodeEvent(e)
	if err != nil {
		return err
	}
	ts := bigtable.Time(e.Time).TruncateToMilliseconds()
	m := s.mark(e, ts)
	s.row(m.jobRow, phaseEvents).set(familyEvents, qualifier, ts, value)
	s.row(timeKey, phaseEvents).set(familyEvents, timeQualifier, ts, value)
	return nil
}

func (s *rowSet) row(key string, phase int) *row {
	r, ok := s.byKey[key]
	if !ok {
		r = &row{key: key, mut: bigtable.NewMutation(), bytes: len(key), phase: phase}
		s.byKey[key] = r
		s.rows = append(s.rows, r)
	}
	return r
}

// mark records what e does to its job's index entry, and returns the job's
// state in this append.
func (s *rowSet) mark(e *Event, ts bigtable.Timestamp) *openMark {
	m, ok := s.open[e.Job]
	if !ok {
		path := jobPath(e.Job)
		m = &openMark{jobRow: rowKey(prefixJob, path), openRow: rowKey(prefixOpen, path)}
		s.open[e.Job] = m
		s.jobs = append(s.jobs, e.Job)
	}
	if e.State == StateDone {
		m.done = true
	} else if ts > m.ts {
		m.ts = ts
	}
	return m
}

func (s *rowSet) addOpenRows() {
	for _, k := range s.jobs {
		m := s.open[k]
		if m.done {
			s.row(m.openRow, phaseClose).deleteRow()
		} else {
			s.row(m.openRow, phaseOpen).set(familyOpen, openQualifier, m.ts, nil)
		}
	}
}

func (r *row) deleteRow() {
	r.mut.DeleteRow()
	r.bytes += cellOverhead
}

// ordered returns the rows by phase, keeping their order within a phase.
func (s *rowSet) ordered() []*row {
	out := make([]*row, 0, len(s.rows))
	for phase := phaseOpen; phase <= phaseClose; phase++ {
		for _, r := range s.rows {
			if r.phase == phase {
				out = append(out, r)
			}
		}
	}
	return out
}

// chunks splits rows into ApplyBulk calls of at most maxRows rows and,
// unless a single row is larger, maxBatchBytes. The index entries an
// append removes go in calls of their own, after every other: Bigtable
// applies the rows of one call in any order, and may apply some and fail
// others, so a job could otherwise leave the index while its DONE event is
// not durable, and then, should the writer give up, never be polled nor
// pruned again.
func chunks(rows []*row, maxRows int) [][]*row {
	var out [][]*row
	start, size := 0, 0
	for i, r := range rows {
		closing := i > 0 && r.phase == phaseClose && rows[i-1].phase != phaseClose
		if i > start && (i-start == maxRows || size+r.bytes > maxBatchBytes || closing) {
			out = append(out, rows[start:i])
			start, size = i, 0
		}
		size += r.bytes
	}
	if start < len(rows) {
		out = append(out, rows[start:])
	}
	return out
}

// apply writes rows chunk by chunk, stopping at the first chunk that fails.
func (l *Log) apply(ctx context.Context, rows []*row) error {
	for _, c := range chunks(rows, l.maxRows) {
		keys := make([]string, len(c))
		muts := make([]*bigtable.Mutation, len(c))
		for i, r := range c {
			keys[i], muts[i] = r.key, r.mut
		}
		errs, err := l.tbl.ApplyBulk(ctx, keys, muts)
		if err != nil {
			return backendError(ctx, err)
		}
		if err := rowErrors(keys, errs); err != nil {
			return err
		}
	}
	return nil
}
