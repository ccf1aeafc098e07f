package events

import (
	"fmt"
	"strconv"
	"time"
)

// The plausibility rule. BigQuery's statistics and times are read from
// logs and APIs that the product does not control, and a value that cannot
// be true (a negative byte count, a count beyond anything a job can reach,
// a job that started in 1969 or in 9999) would otherwise distort every sum,
// sort and duration built on it. The one rule, applied to every event of
// every writer by the appender (and by the audit-log decoder, which reports
// what it dropped):
//
//   - an implausible fact is dropped from its event, which is kept: the fact
//     reads as unknown, so the fold keeps what other events said. The drop
//     is logged as a warning and counted by field and reason;
//   - an amount or count (every int64 fact: bytes, slot-ms, rows, billing
//     tier, work units) is implausible below zero (ImplausibleNegative) or
//     above MaxPlausibleCount (ImplausibleTooLarge); the decoder reads a
//     value beyond int64 as the int64 limit of its sign, which the rule then
//     drops;
//   - a job time (create, start, end) is implausible before
//     EarliestPlausible (ImplausibleTooEarly) or more than FutureTolerance
//     after the event that carries it (ImplausibleFuture);
//   - an event's own time cannot be dropped: the same bounds, counted from
//     now, make it implausible, and then the decoder takes the entry's next
//     time (receiveTimestamp, then the job's end, start or create time) and
//     dead-letters an entry without a plausible one (no_time), and the
//     appender refuses such an event from any writer as invalid.
const (
	// MaxPlausibleCount is the largest plausible amount or count: 2^60,
	// an exabyte, or 36 million slot-years.
	MaxPlausibleCount = 1 << 60
	// FutureTolerance is how far after its reference a time may lie:
	// clocks disagree, but not by a day.
	FutureTolerance = 24 * time.Hour
)

// EarliestPlausible is the earliest plausible time of a job: BigQuery did
// not exist before 2010.
var EarliestPlausible = time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)

// The reasons a value is implausible: stable identifiers, fit for metric
// labels.
const (
	ImplausibleNegative = "negative"
	ImplausibleTooLarge = "too_large"
	ImplausibleTooEarly = "too_early"
	ImplausibleFuture   = "in_the_future"
)

// Dropped is a value the plausibility rule removed.
type Dropped struct {
	// Field is the value's name: a fact's JSON name (slot_ms, start_time),
	// or for an event's own time the audit entry's (timestamp,
	// receiveTimestamp).
	Field string `json:"field"`
	// Reason is one of the Implausible constants.
	Reason string `json:"reason"`
	// Value is the value as it was, as text.
	Value string `json:"value"`
}

// String describes the drop.
func (d Dropped) String() string { return fmt.Sprintf("%s %s (%s)", d.Field, d.Value, d.Reason) }

// DropImplausible clears the facts of e that the plausibility rule refuses,
// and returns them. Job times are judged against e.Time; an event without a
// time keeps its job times (Validate refuses it anyway).
func (e *Event) DropImplausible() []Dropped {
	var d dropper
	e.Facts.dropImplausible(&d, e.Time)
	return d.dropped
}

// ImplausibleTime returns why t is not a plausible time of a job whose
// reference time (the event's, or now for an event's own time) is ref, or
// "" when it is plausible.
func ImplausibleTime(t, ref time.Time) string {
	switch {
	case t.Before(EarliestPlausible):
		return ImplausibleTooEarly
	case !ref.IsZero() && t.After(ref.Add(FutureTolerance)):
		return ImplausibleFuture
	}
	return ""
}

// ImplausibleCount returns why n is not a plausible amount or count, or ""
// when it is.
func ImplausibleCount(n int64) string {
	switch {
	case n < 0:
		return ImplausibleNegative
	case n > MaxPlausibleCount:
		return ImplausibleTooLarge
	}
	return ""
}

// dropper collects the drops of one event.
type dropper struct {
	dropped []Dropped
}

// count clears *v when it is an implausible amount or count.
func (d *dropper) count(field string, v **int64) {
	if *v == nil {
		return
	}
	reason := ImplausibleCount(**v)
	if reason == "" {
		return
	}
	d.dropped = append(d.dropped, Dropped{Field: field, Reason: reason, Value: strconv.FormatInt(**v, 10)})
	*v = nil
}

// time clears *t when it is an implausible time of a job against ref.
func (d *dropper) time(field string, t *time.Time, ref time.Time) {
	if t.IsZero() {
		return
	}
	if reason := ImplausibleTime(*t, ref); reason != "" {
		d.dropped = append(d.dropped, Dropped{Field: field, Reason: reason, Value: t.Format(time.RFC3339Nano)})
		*t = time.Time{}
	}
}
