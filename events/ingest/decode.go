package ingest

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// decoders decode audit entries on a few long-lived goroutines, one per CPU.
// Decoding an entry needs a deep stack (the JSON decoder recurses through
// the entry's nesting), and the goroutine that handles a delivery is new
// for every message (Watermill starts one per message): decoding there grew
// a fresh stack, copy after copy, for every entry, some 4.5% of the
// service's CPU at 5,000 entries/s. A worker's stack stays grown.
//
// A handler hands its entry to a worker and waits for the result; once the
// decoders are stopped, it decodes the entry itself.
type decoders struct {
	fn   func(entry []byte, now time.Time) ([]events.Event, []events.Dropped, error) // auditlog.DecodeAt
	work chan *decoding
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// decoding is one entry to decode and, once done is signalled, its result.
type decoding struct {
	entry   []byte
	now     time.Time
	evs     []events.Event
	dropped []events.Dropped
	err     error
	panic   *decodePanic // the decoder panicked: the handler panics with it
	done    chan struct{}
}

// decodePanic is a panic of the decoder on a worker, raised again on the
// handler's goroutine so that the policy dead-letters the entry as it does
// any other panic, with the worker's stack.
type decodePanic struct {
	value any
	stack []byte
}

func (p *decodePanic) String() string {
	return fmt.Sprintf("%v (decoding the entry; the decoder's stack:\n%s)", p.value, p.stack)
}

var decodings = sync.Pool{New: func() any { return &decoding{done: make(chan struct{}, 1)} }}

func startDecoders(fn func([]byte, time.Time) ([]events.Event, []events.Dropped, error)) *decoders {
	n := runtime.GOMAXPROCS(0)
	d := &decoders{fn: fn, work: make(chan *decoding), stop: make(chan struct{})} // unbuffered: a worker that took an entry finishes it
	for range n {
		d.wg.Go(d.run)
	}
	return d
}

func (d *decoders) run() {
	for {
		select {
		case job := <-d.work:
			job.decode(d.fn)
			job.done <- struct{}{}
		case <-d.stop:
			return
		}
	}
}

func (job *decoding) decode(fn func([]byte, time.Time) ([]events.Event, []events.Dropped, error)) {
	defer func() {
		if r := recover(); r != nil {
			job.panic = &decodePanic{value: r, stack: debug.Stack()}
		}
	}()
	job.evs, job.dropped, job.err = fn(job.entry, job.now)
}

// decode is d.fn (auditlog.DecodeAt), run by a worker.
func (d *decoders) decode(entry []byte, now time.Time) ([]events.Event, []events.Dropped, error) {
	job := decodings.Get().(*decoding)
	job.entry, job.now = entry, now
	select {
	case d.work <- job:
		select {
		case <-job.done:
		case <-d.stop: // the worker finishes the entry before it looks at stop
			<-job.done
		}
	case <-d.stop:
		job.decode(d.fn)
	}
	evs, dropped, err, p := job.evs, job.dropped, job.err, job.panic
	*job = decoding{done: job.done}
	decodings.Put(job)
	if p != nil {
		panic(p)
	}
	return evs, dropped, err
}

// close stops the workers; later entries are decoded by their handlers.
func (d *decoders) close() {
	d.once.Do(func() { close(d.stop) })
	d.wg.Wait()
}
