package events

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/bigtable"
)

// readRows is the table's ReadRows, given up (with an ErrUnavailable that
// says so) once Bigtable has sent nothing for the log's StallTimeout: from
// the call until the first row, and from the return of f for one row until
// the next. The time f takes does not count, so a slow caller (a replay
// waiting on BigQuery, a merge of shards) never trips it; a backend that
// does not answer does, however long the read is meant to take.
func (l *Log) readRows(ctx context.Context, rs bigtable.RowSet, f func(bigtable.Row) bool, opts ...bigtable.ReadOption) error {
	if l.stall <= 0 {
		return l.tbl.ReadRows(ctx, rs, f, opts...)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stalled := fmt.Errorf("%w: Bigtable sent nothing for %s", ErrUnavailable, l.stall)
	t := time.AfterFunc(l.stall, func() { cancel(stalled) })
	defer t.Stop()
	gaveUp := false
	err := l.tbl.ReadRows(ctx, rs, func(r bigtable.Row) bool {
		if !t.Stop() {
			gaveUp = true // the row came as the read was given up
			return false
		}
		more := f(r)
		t.Reset(l.stall)
		return more
	}, opts...)
	if (err != nil || gaveUp) && context.Cause(ctx) == stalled {
		return stalled
	}
	return err
}

// readRow is the table's ReadRow, bounded by the log's StallTimeout.
func (l *Log) readRow(ctx context.Context, key string, opts ...bigtable.ReadOption) (bigtable.Row, error) {
	if l.stall <= 0 {
		return l.tbl.ReadRow(ctx, key, opts...)
	}
	stalled := fmt.Errorf("%w: Bigtable sent nothing for %s", ErrUnavailable, l.stall)
	ctx, cancel := context.WithTimeoutCause(ctx, l.stall, stalled)
	defer cancel()
	row, err := l.tbl.ReadRow(ctx, key, opts...)
	if err != nil && context.Cause(ctx) == stalled {
		return nil, stalled
	}
	return row, err
}
