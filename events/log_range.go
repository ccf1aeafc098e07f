package events

import (
	"context"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/bigtable"
)

// shardBuffer is how many decoded events each shard scan may hold ahead of
// the merge.
const shardBuffer = 64

// shardItem is what a shard scan hands the merge: an event, or the error
// that ended the scan.
type shardItem struct {
	ev  Event
	err error
}

// mergeShards scans the time rows of every shard in parallel, each in
// (Time, ID) order, and calls fn for each event in (Time, ID) order across
// shards. Every scan is stopped and waited for before it returns.
func (l *Log) mergeShards(ctx context.Context, from, to time.Time, fn func(Event) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	streams := make([]<-chan shardItem, timeShards)
	for shard := range timeShards {
		ch := make(chan shardItem, shardBuffer)
		streams[shard] = ch
		wg.Go(func() {
			defer close(ch)
			l.scanShard(ctx, shard, from, to, ch)
		})
	}
	err := merge(ctx, streams, fn)
	cancel()
	wg.Wait()
	return err
}

// scanShard sends the events of one shard's time rows in [from, to) to ch,
// then the error that ended the scan, if any.
func (l *Log) scanShard(ctx context.Context, shard int, from, to time.Time, ch chan<- shardItem) {
	rr := bigtable.NewRange(timeBound(shard, from), timeBound(shard, to))
	var decodeErr error
	err := l.readRows(ctx, rr, func(r bigtable.Row) bool {
		for _, c := range r[familyEvents] {
			ev, err := decodeEvent(c.Value)
			if err != nil {
				decodeErr = fmt.Errorf("row %s: %w", c.Row, err)
				return false
			}
			if !send(ctx, ch, shardItem{ev: ev}) {
				return false
			}
		}
		return true
	}, bigtable.RowFilter(eventsFilter))
	switch {
	case decodeErr != nil:
		err = decodeErr
	case err != nil:
		err = fmt.Errorf("scanning time shard %d: %w", shard, backendError(ctx, err))
	case ctx.Err() != nil:
		err = ctx.Err() // stopped while sending: the merge has what it needs
	}
	if err != nil {
		send(ctx, ch, shardItem{err: err})
	}
}

func send(ctx context.Context, ch chan<- shardItem, it shardItem) bool {
	select {
	case ch <- it:
		return true
	case <-ctx.Done():
		return false
	}
}

// merge calls fn with the smallest head of streams until all are drained.
// A stream ends when its channel closes; an error item ends the merge.
func merge(ctx context.Context, streams []<-chan shardItem, fn func(Event) error) error {
	heads := make([]*Event, len(streams))
	for i := range streams {
		if err := next(ctx, streams, heads, i); err != nil {
			return err
		}
	}
	for {
		i := minHead(heads)
		if i < 0 {
			return nil
		}
		if err := fn(*heads[i]); err != nil {
			return err
		}
		if err := next(ctx, streams, heads, i); err != nil {
			return err
		}
	}
}

// next replaces heads[i] with the next event of streams[i], nil at its end.
func next(ctx context.Context, streams []<-chan shardItem, heads []*Event, i int) error {
	select {
	case it, ok := <-streams[i]:
		switch {
		case !ok:
			heads[i] = nil
		case it.err != nil:
			return it.err
		default:
			heads[i] = &it.ev
		}
		return nil
	case <-ctx.Done():
		return backendError(ctx, ctx.Err())
	}
}

func minHead(heads []*Event) int {
	best := -1
	for i, h := range heads {
		if h != nil && (best < 0 || compareEvents(h, heads[best]) < 0) {
			best = i
		}
	}
	return best
}
