package events

import (
	"context"
	"fmt"

	"cloud.google.com/go/bigtable"
)

// pingRowKey is a row no event, time or index row can have: every one of
// those starts with a prefix and '#'.
const pingRowKey = "ping"

// Ping reads a row that never exists, to check that the log's table
// answers: nil when it does, and an error matching ErrUnavailable when
// Bigtable is unreachable, the table is missing or ctx ends first. Bound it
// with ctx: the Bigtable client retries an unreachable table until then.
func (l *Log) Ping(ctx context.Context) error {
	if _, err := l.readRow(ctx, pingRowKey, bigtable.RowFilter(bigtable.StripValueFilter())); err != nil {
		return fmt.Errorf("reaching Bigtable table %s: %w", l.table, backendError(ctx, err))
	}
	return nil
}
