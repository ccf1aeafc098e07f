package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// batcher combines the appends of concurrent writers into few log writes
// (group commit): a worker takes the first waiting request, adds whatever
// else is waiting up to the batch size, writes them in one Append, and once
// they are written starts publishing them (in a goroutine of the batch's
// own, so that a slow Pub/Sub does not hold the log writes back; the
// publisher's flow control bounds what waits) and takes the next batch.
// Under no load a request is written at once, alone; under load batches fill
// up. Each request learns the outcome of the write and the publish that
// carried it, so nothing is acknowledged before it is durable and
// published. A failed write or publish fails every request of its batch;
// the log is idempotent and subscribers fold duplicates, so their retries
// are safe.
type batcher struct {
	log     Log
	publish func(ctx context.Context, evs []events.Event, payloads [][]byte) error
	max     int
	timeout time.Duration
	base    context.Context // ends when the appender gives up on in-flight work
	reqs    chan *appendReq
	stop    chan struct{}
	wg      sync.WaitGroup
	metrics *metrics
}

type appendReq struct {
	evs      []events.Event
	payloads [][]byte // evs encoded for the events topic
	result   chan error
}

func newBatcher(base context.Context, log Log, publish func(context.Context, []events.Event, [][]byte) error, cfg AppenderConfig, m *metrics) *batcher {
	b := &batcher{log: log, publish: publish, max: cfg.Batch, timeout: cfg.Timeout, base: base,
		reqs: make(chan *appendReq), stop: make(chan struct{}), metrics: m}
	b.wg.Add(cfg.Workers)
	for range cfg.Workers {
		go b.work()
	}
	return b
}

// append writes evs durably and publishes them (payloads), batched with
// other concurrent appends. The write and the publish have their own
// deadlines, so when ctx ends first they may still land.
func (b *batcher) append(ctx context.Context, evs []events.Event, payloads [][]byte) error {
	r := &appendReq{evs: evs, payloads: payloads, result: make(chan error, 1)}
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		return fmt.Errorf("appending %d events: %w: %w", len(evs), events.ErrUnavailable, ctx.Err())
	}
	select {
	case err := <-r.result:
		return err
	case <-ctx.Done():
		return fmt.Errorf("appending %d events: %w: %w", len(evs), events.ErrUnavailable, ctx.Err())
	}
}

func (b *batcher) work() {
	defer b.wg.Done()
	for {
		select {
		case r := <-b.reqs:
			b.flush(b.collect(r))
		case <-b.stop:
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

// flush writes a batch, then publishes it, each with its own deadline: the
// requests' contexts belong to different writers, and one of them ending
// must not fail the others.
func (b *batcher) flush(batch []*appendReq) {
	n, m := 0, 0
	for _, r := range batch {
		n, m = n+len(r.evs), m+len(r.payloads)
	}
	evs, payloads := make([]events.Event, 0, n), make([][]byte, 0, m)
	for _, r := range batch {
		evs = append(evs, r.evs...)
		payloads = append(payloads, r.payloads...)
	}
	answer := func(err error) {
		for _, r := range batch {
			r.result <- err
		}
	}
	if err := b.write(evs); err != nil {
		answer(err)
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		ctx, cancel := context.WithTimeout(b.base, b.timeout)
		defer cancel()
		answer(b.publish(ctx, evs, payloads))
	}()
}

// write appends evs to the log with its own deadline.
func (b *batcher) write(evs []events.Event) error {
	ctx, cancel := context.WithTimeout(b.base, b.timeout)
	defer cancel()
	start := time.Now()
	err := b.log.Append(ctx, evs)
	b.metrics.observeAppend(time.Since(start), len(evs), err)
	if ctx.Err() != nil && err != nil && !errors.Is(err, events.ErrUnavailable) {
		err = fmt.Errorf("appending %d events: %w: %w", len(evs), events.ErrUnavailable, err)
	}
	return err
}

// close stops the workers once they are idle; wait until they are done and
// the publishes they started have ended.
func (b *batcher) close() { close(b.stop) }

func (b *batcher) wait() { b.wg.Wait() }
