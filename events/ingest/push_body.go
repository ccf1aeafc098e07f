package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
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

// pushCeiling is larger than any push body Pub/Sub sends: a message of at
// most 10 MB, base64-encoded (13.4 MB), with its attributes in an envelope.
// A body past Config.PushMaxBody and within it is a message Pub/Sub would
// push again and again: it is read through, kept by its start, length and
// digest, and dead-lettered. A larger one is not Pub/Sub's, and refused.
const pushCeiling = 16 << 20

// keptTail is how much of the end of a body dead-lettered cut short is kept
// beside its start (in an attribute, whose values Pub/Sub bounds at 1024
// bytes): an envelope's messageId and subscription follow its data.
const keptTail = 512

// Why a push body could not be read.
var (
	errPushTooLarge = errors.New("push body larger than any Pub/Sub push")
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

// oversizeError is a push body larger than Config.PushMaxBody and within
// pushCeiling, read through: its start, its end, its length and digest.
type oversizeError struct {
	head, tail []byte
	size       int64
	sha256     string
	max        int64
}

func (e *oversizeError) Error() string {
	return fmt.Sprintf("push body of %d bytes is larger than the push intake takes (%d)", e.size, e.max)
}

// readPush reads a push body of at most max bytes within timeout, charging
// the budget as its buffer grows. The caller releases the charge once the
// push is answered, whatever the error. A body larger than max, up to
// pushCeiling, is read through and returned as an *oversizeError.
func readPush(w http.ResponseWriter, r *http.Request, max int64, timeout time.Duration, c *charge) ([]byte, error) {
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return nil, errPushBroken
	}
	if r.ContentLength > pushCeiling { // refused before reading: also keeps ContentLength+1 from wrapping
		return nil, errPushTooLarge
	}
	body := r.Body
	size := int64(firstChunk)
	if r.ContentLength > 0 {
		size = min(size, r.ContentLength+1) // +1: a read at the end sees io.EOF
	}
	if !c.take(size) {
		return nil, errPushBusy
	}
	buf := make([]byte, 0, size)
	for {
		if int64(len(buf)) > max {
			return nil, readOversize(buf, body, max)
		}
		if len(buf) == cap(buf) {
			grow := min(int64(cap(buf)), max+1-int64(cap(buf))) // max+1: the byte too many
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
			if int64(len(buf)) > max {
				return nil, readOversize(buf, body, max)
			}
			return buf, nil
		case err != nil:
			return nil, readFailure(err)
		}
	}
}

// readOversize reads the rest of a body past max, whose start is read,
// through a digest, keeping its end: an *oversizeError, or why reading it
// failed (errPushTooLarge past pushCeiling).
func readOversize(read []byte, body io.Reader, max int64) error {
	sum := sha256.New()
	sum.Write(read)
	tail := &tailWriter{keep: keptTail}
	tail.Write(read)
	rest, err := io.Copy(io.MultiWriter(sum, tail), io.LimitReader(body, pushCeiling+1-int64(len(read))))
	size := int64(len(read)) + rest
	switch {
	case err != nil:
		return readFailure(err)
	case size > pushCeiling:
		return errPushTooLarge
	}
	return &oversizeError{head: read, tail: tail.buf, size: size, sha256: hexSum(sum), max: max}
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// tailWriter keeps the last keep bytes written to it.
type tailWriter struct {
	keep int
	buf  []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > t.keep {
		p = p[len(p)-t.keep:]
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.keep; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return n, nil
}

// readFailure names why reading a body failed.
func readFailure(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
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
