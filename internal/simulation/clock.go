package simulation

import (
	"time"
)

// runMode is how simulated time advances.
type runMode int

const (
	modeIdle    runMode = iota // not started
	modeVirtual                // Generate: as fast as entries are consumed
	modeReal                   // Run: with the wall clock, times the speed
)

// clock is simulated time. In virtual time it stands where Generate left
// it; in real time it follows the wall clock from an anchor.
type clock struct {
	cursor time.Time // virtual time
	wall0  time.Time // real time: the wall-clock anchor
	virt0  time.Time // real time: the simulated time at wall0
	speed  float64
	real   bool
}

func (c *clock) now() time.Time {
	if !c.real {
		return c.cursor
	}
	return c.virt0.Add(time.Duration(float64(time.Since(c.wall0)) * c.speed))
}

// wallUntil is how long to wait on the wall clock until simulated time t.
func (c *clock) wallUntil(t time.Time) time.Duration {
	return time.Duration(float64(t.Sub(c.virt0))/c.speed) - time.Since(c.wall0)
}

// Precision of the times entries carry.
func jobTime(t time.Time) time.Time { return t.Truncate(time.Millisecond) }
func logTime(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// eventKind is a step of the simulation.
type eventKind uint8

const (
	evArrival     eventKind = iota // the next job is submitted
	evStart                        // a job starts running
	evEnd                          // a job finishes
	evUserCancel                   // a user cancels a job
	evQueryReturn                  // a jobs.query call returns to its caller
	evNextChild                    // a script moves on to its next statement
)

// simEvent is a step scheduled at a simulated time.
type simEvent struct {
	at   time.Time
	seq  uint64
	kind eventKind
	job  *job
	gen  uint32
}

// schedule is the simulation's agenda: a min-heap on time, then on the
// order of scheduling, so that equal times keep a deterministic order.
type schedule struct {
	h   []simEvent
	seq uint64
}

func (s *schedule) push(e simEvent) {
	s.seq++
	e.seq = s.seq
	s.h = append(s.h, e)
	up(s.h, len(s.h)-1, eventLess)
}

func (s *schedule) peek() (time.Time, bool) {
	if len(s.h) == 0 {
		return time.Time{}, false
	}
	return s.h[0].at, true
}

func (s *schedule) pop() simEvent { return popHeap(&s.h, eventLess) }

func eventLess(a, b *simEvent) bool {
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	return a.seq < b.seq
}

// up and down keep a binary min-heap; popHeap removes its minimum.
func up[T any](h []T, i int, less func(a, b *T) bool) {
	for i > 0 {
		p := (i - 1) / 2
		if !less(&h[i], &h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func down[T any](h []T, i int, less func(a, b *T) bool) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && less(&h[r], &h[l]) {
			m = r
		}
		if !less(&h[m], &h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func popHeap[T any](h *[]T, less func(a, b *T) bool) T {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	var zero T
	s[last] = zero
	s = s[:last]
	down(s, 0, less)
	*h = s
	return top
}
