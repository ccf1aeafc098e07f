package simulation

import (
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// pendingEntry is an entry waiting for its delivery time.
type pendingEntry struct {
	at  time.Time
	seq uint64
	e   Entry
}

// deliveries are the entries on their way to the subscriber: a min-heap
// on delivery time, then on the order they were sent.
type deliveries struct {
	h   []pendingEntry
	seq uint64
}

func (d *deliveries) push(at time.Time, e Entry) {
	d.seq++
	e.Published = at
	d.h = append(d.h, pendingEntry{at: at, seq: d.seq, e: e})
	up(d.h, len(d.h)-1, pendingLess)
}

func (d *deliveries) peek() (time.Time, bool) {
	if len(d.h) == 0 {
		return time.Time{}, false
	}
	return d.h[0].at, true
}

func (d *deliveries) pop() Entry { return popHeap(&d.h, pendingLess).e }

func pendingLess(a, b *pendingEntry) bool {
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	return a.seq < b.seq
}

// decideDelivery picks, for a new top-level job, whether its completion
// will be lost or its first entries will arrive after its completion.
// Only short jobs are reordered, so that the wait stays plausible.
func (o *Org) decideDelivery(j *job) {
	d, r := o.cfg.Delivery, o.drng
	switch {
	case r.chance(d.LostCompletionShare):
		j.lost = true
	case j.runFor <= 2*time.Minute && r.chance(d.ReorderShare):
		j.reorder = true
		o.stats.Reordered++
	}
}

// deliver sends an entry of j the way a sink does: a second or so after
// Cloud Logging received it (give or take the jitter), sometimes much
// later, sometimes twice; a lost completion never; a reordered job's early
// entries only after its completion.
func (o *Org) deliver(j *job, e Entry, received time.Time) {
	d, r := o.cfg.Delivery, o.drng
	completion := e.Kind() == string(events.KindCompleted)
	top := j
	if j.parent != nil {
		top = j.parent
	}
	if completion && top.lost && j == top {
		o.stats.Lost++
		return
	}
	at := received.Add(time.Second)
	if d.Jitter > 0 {
		at = at.Add(r.span(0, d.Jitter))
	}
	if r.chance(d.DelayShare) {
		at = at.Add(r.span(5*time.Second, d.MaxDelay))
		o.stats.Delayed++
	}
	if top.reorder && !completion && j == top {
		j.held = append(j.held, pendingEntry{at: at, e: e})
		return
	}
	o.send(at, e)
	if completion && at.After(j.doneDelivered) {
		j.doneDelivered = at
	}
}

// send queues an entry for delivery at at, and perhaps its duplicate.
func (o *Org) send(at time.Time, e Entry) {
	o.out.push(at, e)
	if o.drng.chance(o.cfg.Delivery.DuplicateShare) {
		dup := e
		dup.Redelivery = true
		o.out.push(at.Add(o.drng.span(time.Second, 90*time.Second)), dup)
	}
}

// releaseHeld delivers a reordered job's early entries after its
// completion.
func (o *Org) releaseHeld(j *job) {
	for _, p := range j.held {
		at := p.at
		if !j.doneDelivered.IsZero() && !at.After(j.doneDelivered) {
			at = j.doneDelivered.Add(o.drng.span(500*time.Millisecond, 15*time.Second))
		}
		o.send(at, p.e)
	}
	j.held = nil
}
