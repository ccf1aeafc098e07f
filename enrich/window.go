package enrich

import (
	"context"
	"errors"
	"time"
)

// errPollDeadline is why a poll's calls to the jobs API end when they
// reach the poll's deadline (context.Cause).
var errPollDeadline = errors.New("the poll reached its deadline, a margin before its lease's hold ends")

// appendReserve is the time a poll keeps before its deadline to append
// what it decided: it starts no call to the jobs API then. A window
// shorter than four reserves keeps a quarter of itself.
const appendReserve = 2 * time.Second

// pollWindow is the time a poll may run: until end, the end of its
// lease's hold (zero: until it is stopped).
type pollWindow struct {
	end     time.Time
	reserve time.Duration
}

// newPollWindow is a window of d from now.
func newPollWindow(d time.Duration) pollWindow {
	return pollWindow{end: time.Now().Add(d), reserve: min(appendReserve, d/4)}
}

// work returns the context of a poll's calls to the jobs API: ctx, ended
// a reserve before the window's end (cause errPollDeadline), so that what
// the calls decided can still be appended within the lease.
func (w pollWindow) work(ctx context.Context) (context.Context, context.CancelFunc) {
	if w.end.IsZero() {
		return context.WithCancel(ctx)
	}
	return context.WithDeadlineCause(ctx, w.end.Add(-w.reserve), errPollDeadline)
}

// flush returns the context of a poll's append: ctx, ended at the
// window's end but given at least the reserve from now, so that an
// append made late is not dead on arrival. The events are idempotent: an
// append that outlasts the lease and meets another replica's writes the
// same reconciliations. Stopping (ctx's end) still ends it at once.
func (w pollWindow) flush(ctx context.Context) (context.Context, context.CancelFunc) {
	if w.end.IsZero() {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, later(w.end, time.Now().Add(w.reserve)))
}

// cutOff reports whether the work context of a poll ended at its deadline.
func cutOff(work context.Context) bool {
	return errors.Is(context.Cause(work), errPollDeadline)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
