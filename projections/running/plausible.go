package running

import (
	"math"

	"github.com/bqobserver/bqobserver/events"
)

// plausible applies the plausibility rule (events.Event.DropImplausible) to
// events read from the log or the feed before they are folded: the
// appender applies it to every event it appends, so this drops only what a
// writer without the rule (an older version) left in the log.
func plausible(evs []events.Event) {
	for i := range evs {
		evs[i].DropImplausible()
	}
}

// addSaturating returns a+b, or the int64 limit it would pass: a sum of
// many jobs' statistics saturates rather than wrapping around.
func addSaturating(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}
