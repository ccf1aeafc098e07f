package events

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"time"
)

// Fold returns the state of the job identified by key after all of evs that
// belong to it, in any order and with any duplicates.
func Fold(key JobKey, evs []Event) Job {
	j := Job{Key: key}
	for i := range evs {
		if evs[i].Job == key {
			j.Apply(&evs[i])
		}
	}
	return j
}

// Done reports whether the job has finished, successfully or not.
func (j *Job) Done() bool { return j.State == StateDone }

// Apply folds one event into the job. It ignores events of other jobs.
//
// Every field an event carries is a last-writer-wins register ordered by the
// stamp of the event that wrote it: first the state's rank (so DONE outranks
// RUNNING whatever the clocks say), then the event time to the nanosecond,
// then the event id. Unknown (zero) values never write. Because each
// register keeps the value with the greatest stamp, and distinct events
// never share a stamp, applying the same events in any order, any number of
// times, gives the same Job: Apply is commutative, associative and
// idempotent. A copy of a Job folds on its own: Apply never changes what a
// copy shares.
func (j *Job) Apply(e *Event) {
	if j.Key == (JobKey{}) {
		j.Key = e.Job
	}
	if e.Job != j.Key {
		return
	}
	j.applyDerived(e)
	w := write{j: j, at: stampOf(e)}
	j.applyRegisters(&w, e)
}

// stamp orders the events that write a job's registers: by the rank of the
// state they report, then by time, then by id. Events with the same id are
// the same event, so distinct events never tie.
type stamp struct {
	id   string
	sec  int64
	nsec int32
	rank int8
}

func stampOf(e *Event) stamp {
	return stamp{id: e.ID, sec: e.Time.Unix(), nsec: int32(e.Time.Nanosecond()), rank: int8(e.State.rank())}
}

func (s *stamp) compare(o *stamp) int {
	switch {
	case s.rank != o.rank:
		return cmp.Compare(s.rank, o.rank)
	case s.sec != o.sec:
		return cmp.Compare(s.sec, o.sec)
	case s.nsec != o.nsec:
		return cmp.Compare(s.nsec, o.nsec)
	}
	return strings.Compare(s.id, o.id)
}

// write is one event being folded into a job's registers.
type write struct {
	j  *Job
	at stamp
	// slot is the event's place in j.writers plus one, once it wrote.
	slot uint8
}

// order compares the event with the writer of register r: > 0 when the
// event comes later (or the register is empty), 0 when it is the writer.
func (w *write) order(r int) int {
	cur := w.j.regs[r]
	if cur == 0 {
		return 1
	}
	return w.at.compare(&w.j.writers[cur-1])
}

// take makes the event the writer of register r.
func (w *write) take(r int) {
	if w.slot == 0 {
		w.slot = w.j.addWriter(w.at)
	}
	w.j.regs[r] = w.slot
}

// addWriter returns the place, plus one, of s among the job's writers.
// The writers are a new slice: the writers some register still names, then
// s. A slice is never changed once made, which is what lets copies of a Job
// share it, and keeps it as short as the job's distinct writers.
func (j *Job) addWriter(s stamp) uint8 {
	var moved [numRegisters + 1]uint8 // old place → new place plus one
	n := 0
	for _, r := range j.regs {
		if r != 0 && moved[r-1] == 0 {
			n++
			moved[r-1] = uint8(n)
		}
	}
	ws := make([]stamp, n, n+1)
	for i, r := range j.regs {
		if r != 0 {
			ws[moved[r-1]-1] = j.writers[r-1]
			j.regs[i] = moved[r-1]
		}
	}
	j.writers = append(ws, s)
	return uint8(len(j.writers))
}

// The setters below write a register when the event comes later than its
// writer, or when the event is its writer and the value is greater: equal
// stamps come from one event, or from events that share an id, and the
// values decide between those so that they too fold alike in any order.

func setString[T ~string](w *write, r int, dst *T, v T) {
	if v == "" {
		return
	}
	if c := w.order(r); c > 0 || c == 0 && v > *dst {
		*dst = v
		w.take(r)
	}
}

func setFlag(w *write, r int, dst *bool, v bool) {
	if !v {
		return
	}
	if c := w.order(r); c > 0 || c == 0 && !*dst {
		*dst = v
		w.take(r)
	}
}

func setTime(w *write, r int, dst *time.Time, v time.Time) {
	if v.IsZero() {
		return
	}
	if c := w.order(r); c > 0 || c == 0 && v.After(*dst) {
		*dst = v
		w.take(r)
	}
}

func setStrings(w *write, r int, dst *[]string, v []string) {
	if len(v) == 0 {
		return
	}
	if c := w.order(r); c > 0 || c == 0 && slices.Compare(v, *dst) > 0 {
		*dst = slices.Clone(v)
		w.take(r)
	}
}

func setMap(w *write, r int, dst *map[string]string, v map[string]string) {
	if len(v) == 0 {
		return
	}
	if c := w.order(r); c > 0 || c == 0 && compareMaps(v, *dst) > 0 {
		*dst = maps.Clone(v)
		w.take(r)
	}
}

func setInt64(w *write, r int, dst **int64, v *int64) { setPtr(w, r, dst, v, cmp.Compare[int64]) }

func setBool(w *write, r int, dst **bool, v *bool) { setPtr(w, r, dst, v, compareBools) }

func setError(w *write, r int, dst **JobError, v *JobError) {
	if v != nil && *v != (JobError{}) {
		setPtr(w, r, dst, v, compareErrors)
	}
}

func setPtr[T any](w *write, r int, dst **T, v *T, compare func(a, b T) int) {
	if v == nil {
		return
	}
	if c := w.order(r); c > 0 || c == 0 && (*dst == nil || compare(*v, **dst) > 0) {
		cp := *v
		*dst = &cp
		w.take(r)
	}
}

// setText writes a text that an event may carry cut short: a complete text
// beats a truncated one whatever their order (v1 entries carry the whole
// query where v2 cuts it at 50K), then the stamps decide.
func setText(w *write, r int, dst *string, dstTruncated *bool, v string, truncated bool) {
	if v == "" {
		return
	}
	c := 1
	if w.j.regs[r] != 0 {
		c = compareBools(!truncated, !*dstTruncated)
	}
	if c == 0 {
		c = w.order(r)
	}
	if c > 0 || c == 0 && v > *dst {
		*dst, *dstTruncated = v, truncated
		w.take(r)
	}
}

func earliest(t, at time.Time) time.Time {
	if !at.IsZero() && (t.IsZero() || at.Before(t)) {
		return at
	}
	return t
}

func latest(t, at time.Time) time.Time {
	if at.After(t) {
		return at
	}
	return t
}

func compareBools(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func compareErrors(a, b JobError) int {
	return cmp.Or(strings.Compare(a.Code, b.Code), strings.Compare(a.Message, b.Message))
}

// compareMaps orders maps by their entries sorted by key.
func compareMaps(a, b map[string]string) int {
	ka, kb := slices.Sorted(maps.Keys(a)), slices.Sorted(maps.Keys(b))
	for i := range min(len(ka), len(kb)) {
		if c := cmp.Or(strings.Compare(ka[i], kb[i]), strings.Compare(a[ka[i]], b[kb[i]])); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(ka), len(kb))
}
