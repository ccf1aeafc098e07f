// Package fakeclock is a clock that tests move by hand, safe to share
// between goroutines (every replica of a test, or the code under test and
// the test itself).
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a clock that stands still until advanced.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock that reads now.
func New(now time.Time) *Clock { return &Clock{now: now} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock d forward (or back, for a negative d).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
