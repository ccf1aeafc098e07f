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
	w := write{at: stampOf(e)}
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

// write is one event being folded into a job's registers. It does not
// hold the job, which would make every Job that folds escape to the heap.
type write struct {
	at stamp
	// slot is the event's place among the job's writers, from 1, once it
	// wrote.
	slot uint8
}

// order compares the event with the writer of register r: > 0 when the
// event comes later (or the register is empty), 0 when it is the writer.
func (j *Job) order(w *write, r int) int {
	cur := j.regs[r]
	if cur == 0 {
		return 1
	}
	return w.at.compare(j.writers.at(cur))
}

// take makes the event the writer of register r.
func (j *Job) take(w *write, r int) {
	if w.slot == 0 {
		w.slot = j.addWriter(w.at)
	}
	j.regs[r] = w.slot
}

// writers are the stamps of the events that wrote a job's registers, at
// places from 1: the first few in the Job itself, which a copy of the Job
// copies, the rest in a slice that is never changed once made, which copies
// share.
type writers struct {
	inline [inlineWriters]stamp
	more   []stamp
}

// inlineWriters is how many writers a Job holds without allocating: most
// jobs have an inserted, a started, a progress and a completed event.
const inlineWriters = 4

// maxPlace bounds the places of writers: the writers some register names,
// plus the one being added.
const maxPlace = numRegisters + 1

func (ws *writers) at(place uint8) *stamp {
	if place <= inlineWriters {
		return &ws.inline[place-1]
	}
	return &ws.more[place-inlineWriters-1]
}

// addWriter returns the place of a new writer s: an inline place no
// register names any more, or else a place in a new overflow slice that
// keeps only the overflow writers some register still names.
func (j *Job) addWriter(s stamp) uint8 {
	var named [maxPlace + 1]bool
	for _, r := range j.regs {
		named[r] = true
	}
	for p := uint8(1); p <= inlineWriters; p++ {
		if !named[p] {
			j.writers.inline[p-1] = s
			return p
		}
	}
	var moved [maxPlace + 1]uint8 // old place → new place
	more := make([]stamp, 0, len(j.writers.more)+1)
	for i, st := range j.writers.more {
		if p := inlineWriters + 1 + i; named[p] {
			more = append(more, st)
			moved[p] = uint8(inlineWriters + len(more))
		}
	}
	for i, r := range j.regs {
		if r > inlineWriters {
			j.regs[i] = moved[r]
		}
	}
	j.writers.more = append(more, s)
	return uint8(inlineWriters + len(j.writers.more))
}

// The setters below write a register when the event comes later than its
// writer, or when the event is its writer and the value is greater: equal
// stamps come from one event, or from events that share an id, and the
// values decide between those so that they too fold alike in any order.

func setString[T ~string](j *Job, w *write, r int, dst *T, v T) {
	if v == "" {
		return
	}
	if c := j.order(w, r); c > 0 || c == 0 && v > *dst {
		*dst = v
		j.take(w, r)
	}
}

func setFlag(j *Job, w *write, r int, dst *bool, v bool) {
	if !v {
		return
	}
	if c := j.order(w, r); c > 0 || c == 0 && !*dst {
		*dst = v
		j.take(w, r)
	}
}

func setTime(j *Job, w *write, r int, dst *time.Time, v time.Time) {
	if v.IsZero() {
		return
	}
	if c := j.order(w, r); c > 0 || c == 0 && v.After(*dst) {
		*dst = v
		j.take(w, r)
	}
}

func setStrings(j *Job, w *write, r int, dst *[]string, v []string) {
	if len(v) == 0 {
		return
	}
	if c := j.order(w, r); c > 0 || c == 0 && slices.Compare(v, *dst) > 0 {
		*dst = slices.Clone(v)
		j.take(w, r)
	}
}

func setMap(j *Job, w *write, r int, dst *map[string]string, v map[string]string) {
	if len(v) == 0 {
		return
	}
	if c := j.order(w, r); c > 0 || c == 0 && compareMaps(v, *dst) > 0 {
		*dst = maps.Clone(v)
		j.take(w, r)
	}
}

func setInt64(j *Job, w *write, r int, dst **int64, v *int64) {
	setPtr(j, w, r, dst, v, cmp.Compare[int64])
}

func setBool(j *Job, w *write, r int, dst **bool, v *bool) { setPtr(j, w, r, dst, v, compareBools) }

func setError(j *Job, w *write, r int, dst **JobError, v *JobError) {
	if v != nil && *v != (JobError{}) {
		setPtr(j, w, r, dst, v, compareErrors)
	}
}

func setPtr[T any](j *Job, w *write, r int, dst **T, v *T, compare func(a, b T) int) {
	if v == nil {
		return
	}
	if c := j.order(w, r); c > 0 || c == 0 && (*dst == nil || compare(*v, **dst) > 0) {
		cp := *v
		*dst = &cp
		j.take(w, r)
	}
}

// setText writes a text that an event may carry cut short: a complete text
// beats a truncated one whatever their order (v1 entries carry the whole
// query where v2 cuts it at 50K), then the stamps decide.
func setText(j *Job, w *write, r int, dst *string, dstTruncated *bool, v string, truncated bool) {
	if v == "" {
		return
	}
	c := 1
	if j.regs[r] != 0 {
		c = compareBools(!truncated, !*dstTruncated)
	}
	if c == 0 {
		c = j.order(w, r)
	}
	if c > 0 || c == 0 && v > *dst {
		*dst, *dstTruncated = v, truncated
		j.take(w, r)
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
