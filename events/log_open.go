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

// scanOpen calls fn for the job of every open-index row. A row of the
// index's shape whose job key the log refuses (a part with a character
// refused since it was written) is skipped and, once the scan is done,
// removed and reported; a row of another shape (a later version's, say) is
// skipped and left.
func (l *Log) scanOpen(ctx context.Context, fn func(JobKey) error) error {
	var stop error
	var stale []*row
	var why []error
	err := l.readRows(ctx, bigtable.PrefixRange(prefixOpen), func(r bigtable.Row) bool {
		k, err := parseOpenRowKey(r.Key())
		if err != nil {
			if errors.Is(err, errRefusedJobKey) {
				s := &row{key: r.Key(), mut: bigtable.NewMutation(), bytes: len(r.Key())}
				s.deleteRow()
				stale, why = append(stale, s), append(why, err)
			}
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
		// Every job was handed on; a removal that fails is tried again at
		// the next scan.
		if err := l.apply(ctx, stale); err != nil {
			why = []error{fmt.Errorf("removing it failed (tried again at the next scan): %w", err)}
		}
		if l.onStale != nil {
			for i, s := range stale {
				l.onStale(s.key, why[min(i, len(why)-1)])
			}
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
