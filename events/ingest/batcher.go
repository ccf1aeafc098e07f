package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// appender is the event log as the pipeline uses it; *events.Log is one.
type appender interface {
	Append(ctx context.Context, evs []events.Event) error
}

var _ appender = (*events.Log)(nil)

// errBatcherClosed is returned to appends that arrive after Close. It is
// transient: the entry is handed back to Pub/Sub for another replica.
var errBatcherClosed = fmt.Errorf("event log writer is closed: %w", events.ErrUnavailable)

// batcher combines the appends of concurrent handlers into few log writes
// (group commit): a worker takes the first waiting request, adds whatever
// else is waiting up to the batch size, writes them in one Append and
// answers each request. Under no load a request is written at once, alone;
// under load batches fill up. Each request learns the outcome of the write
// that carried it, so nothing is acknowledged before it is durable.
//
// Requests are validated one by one before they are batched, so that one
// invalid event fails only its own entry. A failed write fails every
// request of its batch; the log is idempotent, so their retries are safe.
type batcher struct {
	log     appender
	max     int
	timeout time.Duration
	reqs    chan *appendReq
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	metrics *metrics
}

type appendReq struct {
	evs    []events.Event
	result chan error
}

func newBatcher(log appender, maxEvents, workers int, timeout time.Duration, m *metrics) *batcher {
	b := &batcher{log: log, max: maxEvents, timeout: timeout, reqs: make(chan *appendReq), done: make(chan struct{}), metrics: m}
	b.wg.Add(workers)
	for range workers {
		go b.work()
	}
	return b
}

// Append writes evs durably, batched with other concurrent appends.
func (b *batcher) Append(ctx context.Context, evs []events.Event) error {
	for i := range evs {
		if err := evs[i].Validate(); err != nil {
			return fmt.Errorf("appending: %w: %w", events.ErrInvalid, err)
		}
	}
	r := &appendReq{evs: evs, result: make(chan error, 1)}
	select {
	case b.reqs <- r:
	case <-b.done:
		return errBatcherClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.result:
		return err
	case <-ctx.Done():
		// The write may still land; the log is idempotent, so the
		// redelivery that follows is harmless.
		return ctx.Err()
	}
}

func (b *batcher) work() {
	defer b.wg.Done()
	for {
		select {
		case r := <-b.reqs:
			b.flush(b.collect(r))
		case <-b.done:
			return
		}
	}
}

// collect adds waiting requests to first until the batch is full or no
// request waits.
func (b *batcher) collect(first *appendReq) []*appendReq {
	batch, n := []*appendReq{first}, len(first.evs)
	for n < b.max {
		select {
		case r := <-b.reqs:
			batch, n = append(batch, r), n+len(r.evs)
		default:
			return batch
		}
	}
	return batch
}

// flush writes a batch with its own deadline: the requests' contexts belong
// to different messages, and one of them ending must not fail the others.
func (b *batcher) flush(batch []*appendReq) {
	var evs []events.Event
	for _, r := range batch {
		evs = append(evs, r.evs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	start := time.Now()
	err := b.log.Append(ctx, evs)
	b.metrics.observeAppend(time.Since(start), len(evs), err)
	if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, events.ErrUnavailable) {
		err = fmt.Errorf("appending %d events: %w: %w", len(evs), events.ErrUnavailable, err)
	}
	for _, r := range batch {
		r.result <- err
	}
}

// Close stops the workers after the writes in flight; later appends fail
// with a transient error. It is idempotent.
func (b *batcher) Close() {
	b.once.Do(func() { close(b.done) })
	b.wg.Wait()
}
