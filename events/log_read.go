package events

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/bigtable"
)

// jobRowKeys returns the job rows of keys, each once, by row key. It reports
// every key that is not a valid job key.
func jobRowKeys(keys []JobKey) (map[string]JobKey, error) {
	rows := make(map[string]JobKey, len(keys))
	var errs []error
	for _, k := range keys {
		if err := k.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		rows[jobRowKey(k)] = k
	}
	return rows, errors.Join(errs...)
}

// maxReadKeyBytes bounds the row keys of one ReadRows request: Cloud
// Bigtable refuses a request larger than 512 KB (bigtable.RowSet), and job
// ids may be up to 1,024 characters long, so a batch of the log's batch
// size of long keys would be refused whenever it is sent.
const maxReadKeyBytes = 400 << 10

// keyFraming is what a row key costs a request beyond its bytes: its field
// tag and length.
const keyFraming = 4

// readJobRows reads rows in batches of the log's batch size, or fewer when
// their keys would make the request too large (maxReadKeyBytes).
func (l *Log) readJobRows(ctx context.Context, rows map[string]JobKey, fn func(JobKey, []Event) error) error {
	batch := make(bigtable.RowList, 0, min(len(rows), l.maxRows))
	size := 0
	for key := range rows {
		if len(batch) > 0 && size+len(key)+keyFraming > maxReadKeyBytes {
			if err := l.readJobBatch(ctx, batch, rows, fn); err != nil {
				return err
			}
			batch, size = batch[:0], 0
		}
		batch = append(batch, key)
		size += len(key) + keyFraming
		if len(batch) == l.maxRows {
			if err := l.readJobBatch(ctx, batch, rows, fn); err != nil {
				return err
			}
			batch, size = batch[:0], 0
		}
	}
	if len(batch) == 0 {
		return nil
	}
	return l.readJobBatch(ctx, batch, rows, fn)
}

func (l *Log) readJobBatch(ctx context.Context, batch bigtable.RowList, rows map[string]JobKey, fn func(JobKey, []Event) error) error {
	var stop error
	var buf []Event // the events of the row before, which fn no longer holds
	err := l.readRows(ctx, batch, func(r bigtable.Row) bool {
		evs, err := decodeRow(r, buf)
		buf = evs
		if err != nil {
			stop = fmt.Errorf("reading job events: %w", err)
			return false
		}
		if len(evs) > 0 {
			stop = fn(rows[r.Key()], evs)
		}
		return stop == nil
	})
	if stop != nil {
		return stop
	}
	if err != nil {
		return fmt.Errorf("reading the events of %d jobs: %w", len(batch), backendError(ctx, err))
	}
	return nil
}
