package events

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/bigtable"
)

// openFilter reads only whether an index row exists: its newest cell,
// without the (empty) value. Index rows hold only the familyOpen family, so
// the filter names none (see eventsFilter for what that saves).
var openFilter = bigtable.ChainFilters(bigtable.LatestNFilter(1), bigtable.StripValueFilter())

// scanOpen calls fn for the job of every open-index row. A row whose key is
// not a job key is skipped and removed once the scan is done.
func (l *Log) scanOpen(ctx context.Context, fn func(JobKey) error) error {
	var stop error
	var stale []*row
	err := l.readRows(ctx, bigtable.PrefixRange(prefixOpen), func(r bigtable.Row) bool {
		k, err := parseOpenRowKey(r.Key())
		if err != nil {
			if l.onStale != nil {
				l.onStale(r.Key(), err)
			}
			s := &row{key: r.Key(), mut: bigtable.NewMutation(), bytes: len(r.Key())}
			s.deleteRow()
			stale = append(stale, s)
			return true
		}
		stop = fn(k)
		return stop == nil
	}, bigtable.RowFilter(openFilter))
	if stop != nil {
		return stop
	}
	if err != nil {
		return backendError(ctx, err)
	}
	if len(stale) > 0 {
		if err := l.apply(ctx, stale); err != nil {
			return fmt.Errorf("removing %d open-jobs index rows that are not job keys: %w", len(stale), err)
		}
	}
	return nil
}

// pruneOpen deletes the index rows of keys.
func (l *Log) pruneOpen(ctx context.Context, keys []JobKey) error {
	seen := make(map[string]bool, len(keys))
	var rows []*row
	var errs []error
	for _, k := range keys {
		if err := k.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		key := openRowKey(k)
		if !seen[key] {
			seen[key] = true
			r := &row{key: key, mut: bigtable.NewMutation(), bytes: len(key)}
			r.deleteRow()
			rows = append(rows, r)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return l.apply(ctx, rows)
}
