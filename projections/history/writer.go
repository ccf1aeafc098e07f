package history

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/bqobserver/bqobserver/events"
)

// WriterConfig configures how rows are batched into appends. The zero value
// of every field means its default.
type WriterConfig struct {
	// MaxRows is the most rows one append carries. Default 500.
	MaxRows int
	// MaxBytes bounds the rows of one append. Default 8 MiB, under the
	// Storage Write API's 10 MB request limit; a row larger than this is
	// refused.
	MaxBytes int
	// FlushInterval is the longest a row waits for others to join its
	// append. Default 1s.
	FlushInterval time.Duration
	// Inflight is how many appends may be in flight at once. Default 8.
	Inflight int
	// Timeout bounds one append, retries included. Default 30s.
	Timeout time.Duration
}

func (c *WriterConfig) setDefaults() {
	if c.MaxRows == 0 {
		c.MaxRows = 500
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 8 << 20
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = time.Second
	}
	if c.Inflight == 0 {
		c.Inflight = 8
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
}

// Validate reports every problem with c at once.
func (c WriterConfig) Validate() error {
	if c.MaxRows < 0 || c.MaxBytes < 0 || c.FlushInterval < 0 || c.Inflight < 0 || c.Timeout < 0 {
		return errors.New("the writer's limits must not be negative")
	}
	return nil
}

// errWriterClosed answers a write that comes after Close: transient, so the
// message is handed back for another replica.
var errWriterClosed = fmt.Errorf("the history writer is closed: %w", events.ErrUnavailable)

// writer appends rows to job_versions through the Storage Write API's
// default stream, batched: a row waits for others until the append is full
// (MaxRows, MaxBytes) or FlushInterval has passed, and several appends may be
// in flight at once. Write returns once BigQuery has the row, or with why
// it does not:
//
//   - a row BigQuery refuses for good (it names the row in the append's row
//     errors, or refuses an append of that row alone) fails with an error
//     matching errRowRejected; the other rows of its append are sent again
//     without it;
//   - anything else (BigQuery unavailable, a quota, a deadline, a table
//     that setup must fix, the writer closing) fails with an error matching
//     events.ErrUnavailable, and the row may or may not be in the table.
//
// The default stream neither deduplicates nor orders: a row written twice
// is in the table twice, which the views make harmless.
type writer struct {
	cfg     WriterConfig
	desc    *descriptorpb.DescriptorProto
	open    opener
	metrics *metrics

	mu      sync.Mutex
	s       stream   // opened at the first append, again after a failed open
	opening *pending // the open in progress, if any

	reqs     chan *rowReq
	stop     chan struct{} // closed by close: no more batches
	loopDone chan struct{}
	sem      chan struct{} // one token an append in flight
	waits    atomic.Int64  // batches that found every append slot taken
	inflight sync.WaitGroup
	base     context.Context // ends when close gives up on appends in flight
	cancel   context.CancelFunc
	once     sync.Once
	closeErr error
}

type rowReq struct {
	row  []byte
	done chan error
}

func newWriter(cfg WriterConfig, desc *descriptorpb.DescriptorProto, open opener, m *metrics) *writer {
	cfg.setDefaults()
	w := &writer{cfg: cfg, desc: desc, open: open, metrics: m,
		reqs: make(chan *rowReq), stop: make(chan struct{}), loopDone: make(chan struct{}),
		sem: make(chan struct{}, cfg.Inflight)}
	w.base, w.cancel = context.WithCancel(context.Background())
	go w.run()
	return w
}

// write appends row; see writer for what its error means. When ctx ends
// first it returns ctx's error, and the row may still be appended.
func (w *writer) write(ctx context.Context, row []byte) error {
	if len(row) > w.cfg.MaxBytes {
		return fmt.Errorf("%w: the row has %d bytes; an append carries at most %d", errRowRejected, len(row), w.cfg.MaxBytes)
	}
	r := &rowReq{row: row, done: make(chan error, 1)}
	select {
	case w.reqs <- r:
	case <-w.stop:
		return errWriterClosed
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", events.ErrUnavailable, ctx.Err())
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", events.ErrUnavailable, ctx.Err())
	}
}

// run forms batches and sends each in a goroutine of its own, at most
// Inflight at once, until close.
func (w *writer) run() {
	defer close(w.loopDone)
	var next *rowReq
	for {
		if next == nil {
			select {
			case next = <-w.reqs:
			case <-w.stop:
				return
			}
		}
		var batch []*rowReq
		batch, next = w.collect(next)
		if len(w.sem) == cap(w.sem) {
			w.waits.Add(1)
		}
		select {
		case w.sem <- struct{}{}:
		case <-w.base.Done(): // closed past its deadline with every slot taken
			if next != nil {
				batch = append(batch, next)
			}
			for _, r := range batch {
				r.done <- errWriterClosed
			}
			return
		}
		w.inflight.Add(1)
		go func() {
			defer func() { <-w.sem; w.inflight.Done() }()
			w.send(batch)
		}()
	}
}

// collect adds rows to first until the batch is full or FlushInterval has
// passed; it returns the batch and a row that did not fit, if any.
func (w *writer) collect(first *rowReq) ([]*rowReq, *rowReq) {
	batch, size := []*rowReq{first}, len(first.row)
	timer := time.NewTimer(w.cfg.FlushInterval)
	defer timer.Stop()
	for len(batch) < w.cfg.MaxRows {
		select {
		case r := <-w.reqs:
			if size+len(r.row) > w.cfg.MaxBytes {
				return batch, r
			}
			batch, size = append(batch, r), size+len(r.row)
		case <-timer.C:
			return batch, nil
		case <-w.stop:
			return batch, nil
		}
	}
	return batch, nil
}

// send appends a batch and answers each of its rows.
func (w *writer) send(batch []*rowReq) {
	rows := make([][]byte, len(batch))
	for i, r := range batch {
		rows[i] = r.row
	}
	for i, err := range w.appendRows(rows) {
		batch[i].done <- err
	}
}

// appendRows appends rows and returns each row's outcome.
func (w *writer) appendRows(rows [][]byte) []error {
	ctx, cancel := context.WithTimeout(w.base, w.cfg.Timeout)
	defer cancel()
	start := time.Now()
	s, err := w.stream(ctx)
	var resp *storagepb.AppendRowsResponse
	if err == nil {
		resp, err = s.append(ctx, rows)
	}
	w.metrics.observeAppend(time.Since(start), len(rows), err)
	if err == nil {
		return make([]error, len(rows))
	}
	if len(resp.GetRowErrors()) > 0 {
		return w.withoutRejected(rows, resp.GetRowErrors())
	}
	if refused(err) {
		return w.oneByOne(rows, err)
	}
	if w.base.Err() != nil {
		err = errors.Join(err, errWriterClosed)
	}
	return repeat(len(rows), unavailable(len(rows), err))
}

// withoutRejected fails the rows BigQuery named, and appends the others
// again: BigQuery writes nothing of an append with a bad row.
func (w *writer) withoutRejected(rows [][]byte, rowErrs []*storagepb.RowError) []error {
	out := make([]error, len(rows))
	for _, re := range rowErrs {
		if i := int(re.GetIndex()); i >= 0 && i < len(rows) {
			out[i] = fmt.Errorf("%w: %s: %s", errRowRejected, re.GetCode(), re.GetMessage())
		}
	}
	var again [][]byte
	var at []int
	for i, err := range out {
		if err == nil {
			again, at = append(again, rows[i]), append(at, i)
		}
	}
	if len(again) == len(rows) { // row errors that name no row of this append
		return repeat(len(rows), unavailable(len(rows), errors.New("BigQuery reported errors of rows the append does not have")))
	}
	if len(again) > 0 {
		for j, err := range w.appendRows(again) {
			out[at[j]] = err
		}
	}
	return out
}

// oneByOne appends each row alone after BigQuery refused their append
// without naming a row, so that only the rows at fault are refused.
func (w *writer) oneByOne(rows [][]byte, err error) []error {
	if len(rows) == 1 {
		return []error{fmt.Errorf("%w: %w", errRowRejected, err)}
	}
	out := make([]error, len(rows))
	for i := range rows {
		out[i] = w.appendRows(rows[i : i+1])[0]
	}
	return out
}

// pending is an open of the stream in progress.
type pending struct {
	done chan struct{} // closed when the open has ended, with s or err set
	s    stream
	err  error
}

// stream returns the open stream, opening it first if needed. One append
// opens it, on its own context (bounded by Timeout, cancelled by close);
// the others wait for that open, or for their own context, without holding
// w.mu: an open of an unavailable BigQuery lasts until its context ends,
// and neither close nor the other appends may wait that long for the lock.
// A failed open is shared by its waiters; the next append opens again.
func (w *writer) stream(ctx context.Context) (stream, error) {
	w.mu.Lock()
	s, p := w.s, w.opening
	if s == nil && p == nil {
		p = &pending{done: make(chan struct{})}
		w.opening = p
		w.mu.Unlock()
		w.openStream(ctx, p)
		return p.s, p.err
	}
	w.mu.Unlock()
	if s != nil {
		return s, nil
	}
	select {
	case <-p.done:
		return p.s, p.err
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the stream to open: %w", context.Cause(ctx))
	}
}

// openStream runs the open p stands for and publishes its outcome.
func (w *writer) openStream(ctx context.Context, p *pending) {
	p.s, p.err = w.open(ctx, w.desc)
	w.mu.Lock()
	w.s, w.opening = p.s, nil
	w.mu.Unlock()
	close(p.done)
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }

func repeat(n int, err error) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

// close stops taking rows, sends what was collected and waits for the
// appends in flight until ctx ends; then it cancels them and fails the rows
// still waiting for a free append (all transiently), waits for the appends
// to return, and closes the stream. It is idempotent.
func (w *writer) close(ctx context.Context) error {
	w.once.Do(func() {
		close(w.stop)
		stop := context.AfterFunc(ctx, w.cancel)
		<-w.loopDone
		w.inflight.Wait()
		var err error
		if !stop() {
			err = ctx.Err() // the appends in flight were cancelled
		}
		w.cancel()
		w.mu.Lock()
		if w.s != nil {
			if cerr := w.s.close(); cerr != nil && err == nil && !isEOF(cerr) {
				err = cerr
			}
		}
		w.mu.Unlock()
		if err != nil {
			w.closeErr = fmt.Errorf("closing the history writer: %w", err)
		}
	})
	return w.closeErr
}
