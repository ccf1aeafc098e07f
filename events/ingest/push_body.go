package ingest

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/semaphore"
)

// amplification is how many bytes of memory a push costs per byte of its
// body while it is handled: the body, and the entry decoded from it.
const amplification = 2

// firstChunk is the buffer a push body is first read into; it doubles as
// the body arrives, so a body sent slowly holds little.
const firstChunk = 4 << 10

// Why a push body could not be read.
var (
	errPushTooLarge = errors.New("push body too large")
	errPushBusy     = errors.New("too many push bytes in flight")
	errPushSlow     = errors.New("push body not received in time")
	errPushBroken   = errors.New("reading the push body failed")
)

// pushBudget bounds the memory that push bodies hold, being read and being
// handled together: each byte of buffer is charged amplification times
// before it is allocated, and released when its push is answered.
type pushBudget struct {
	sem *semaphore.Weighted
}

func newPushBudget(bytes int64) *pushBudget {
	return &pushBudget{sem: semaphore.NewWeighted(bytes)}
}

// charge is what one push holds of the budget.
type charge struct {
	b *pushBudget
	n int64
}

// take charges n more bytes of buffer, or reports false when the budget
// cannot hold them now.
func (c *charge) take(n int64) bool {
	if !c.b.sem.TryAcquire(n * amplification) {
		return false
	}
	c.n += n * amplification
	return true
}

// release gives back everything charged.
func (c *charge) release() {
	if c.n > 0 {
		c.b.sem.Release(c.n)
		c.n = 0
	}
}

// readPush reads a push body of at most max bytes within timeout, charging
// the budget as its buffer grows. The caller releases the charge once the
// push is answered, whatever the error.
func readPush(w http.ResponseWriter, r *http.Request, max int64, timeout time.Duration, c *charge) ([]byte, error) {
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return nil, errPushBroken
	}
	if r.ContentLength > max { // refused before reading: also keeps ContentLength+1 from wrapping
		return nil, errPushTooLarge
	}
	body := http.MaxBytesReader(w, r.Body, max)
	size := int64(firstChunk)
	if r.ContentLength > 0 {
		size = min(size, r.ContentLength+1) // +1: a read at the end sees io.EOF
	}
	if !c.take(size) {
		return nil, errPushBusy
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			grow := min(int64(cap(buf)), max+1-int64(cap(buf)))
			if grow <= 0 {
				grow = 1 // let MaxBytesReader see the byte too many
			}
			if !c.take(grow) {
				return nil, errPushBusy
			}
			bigger := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(bigger, buf)
			buf = bigger
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case errors.Is(err, io.EOF):
			return buf, nil
		case err != nil:
			return nil, readFailure(err)
		}
	}
}

// readFailure names why reading a body failed.
func readFailure(err error) error {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return errPushTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errPushSlow
	}
	return errPushBroken
}

// pushReadStatus is the answer to a push whose body could not be read.
func pushReadStatus(err error) int {
	switch {
	case errors.Is(err, errPushTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errPushBusy):
		return http.StatusTooManyRequests
	case errors.Is(err, errPushSlow):
		return http.StatusRequestTimeout
	}
	return http.StatusBadRequest
}
