package simulation

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"time"
)

// ErrStarted is returned by Run when the simulation already runs, in
// virtual or real time.
var ErrStarted = errors.New("simulation already started")

// Stats counts what a simulation did so far.
type Stats struct {
	// Jobs is the number of jobs submitted; ChildJobs the number of script
	// statements run as child jobs on top.
	Jobs, ChildJobs int
	// Pending and Running are the numbers of jobs waiting to start and
	// running now, script statements included.
	Pending, Running int
	// Entries is the number of entries delivered (yielded by Generate,
	// taken by Run's sink), redeliveries included.
	Entries int
	// ByKind counts delivered entries by Entry.Kind; ByFormat by format.
	ByKind, ByFormat map[string]int
	// Redeliveries, Delayed and Lost count entries delivered twice, late,
	// and never (lost completions); Reordered counts jobs whose first
	// entries were held back until after their completion.
	Redeliveries, Delayed, Lost, Reordered int
}

// SetRate changes the rate at which jobs are submitted from the next
// arrival on, as a busy hour starts or ends; what the rate sized at the
// start (reservations' slots) stays.
func (o *Org) SetRate(rate float64) error {
	if !(rate > 0 && rate <= maxRate) {
		return fmt.Errorf("rate must be above 0 and at most %d jobs/s, not %g", maxRate, rate)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cfg.Rate = rate
	return nil
}

// Stats returns what the simulation did so far.
func (o *Org) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.stats
	s.ByKind, s.ByFormat = maps.Clone(s.ByKind), maps.Clone(s.ByFormat)
	return s
}

// delivered counts the entries the sink took, under one lock: taken once
// an entry, the lock made the delivery wait behind every jobs API call,
// which advances the simulation under it, and at 500 jobs/s with
// enrichment polling, Run handed over some 200 entries a second while the
// calls rendered thousands ahead of it.
func (o *Org) delivered(es []Entry) {
	if len(es) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range es {
		o.count(&es[i])
	}
}

func (o *Org) count(e *Entry) {
	s := &o.stats
	if s.ByKind == nil {
		s.ByKind, s.ByFormat = map[string]int{}, map[string]int{}
	}
	s.Entries++
	s.ByKind[e.Kind()]++
	s.ByFormat[e.Format]++
	if e.Redelivery {
		s.Redeliveries++
	}
}

// Now returns the current simulated time.
func (o *Org) Now() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mode == modeIdle {
		return o.startTime(time.Time{})
	}
	return o.present()
}

// Behind is how far, on the wall clock, Run's delivery is behind real time:
// 0 while it keeps up, and the time the simulation has been held back
// while it does not (see Run). It is 0 outside Run.
func (o *Org) Behind() time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mode != modeReal {
		return 0
	}
	return max(time.Duration(float64(o.clock.now().Sub(o.handed))/o.clock.speed), 0)
}

// deliveryStep is, on the wall clock, how far the simulation may run ahead
// of the entries Run has taken.
const deliveryStep = time.Second

// present is the simulated time the simulation may advance to: the clock's
// time, except in real time when delivery is behind, where it is at most
// deliveryStep beyond the time up to which Run has taken the entries due.
func (o *Org) present() time.Time {
	now := o.clock.now()
	if !o.clock.real {
		return now
	}
	if limit := o.handed.Add(time.Duration(float64(deliveryStep) * o.clock.speed)); now.After(limit) {
		return limit
	}
	return now
}

// startTime is where simulated time begins: the configured start, or
// fallback.
func (o *Org) startTime(fallback time.Time) time.Time {
	if !o.cfg.Start.IsZero() {
		return o.cfg.Start.UTC()
	}
	if !fallback.IsZero() {
		return fallback
	}
	return defaultStart
}

// Generate advances simulated time by d from where it stands, as fast as
// the entries are consumed, and yields the entries delivered in that time
// in delivery order. Stopping the iteration early leaves the simulation at
// the last entry yielded; the next Generate goes on from there. The same
// Config and the same calls (including jobs API cancels between them)
// give the same entries, byte for byte.
//
// Generate yields nothing once Run has been called.
func (o *Org) Generate(d time.Duration) iter.Seq[Entry] {
	return func(yield func(Entry) bool) {
		horizon, ok := o.startVirtual(d)
		if !ok {
			return
		}
		for {
			e, ok := o.nextBefore(horizon)
			if !ok || !yield(e) {
				return
			}
		}
	}
}

func (o *Org) startVirtual(d time.Duration) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch o.mode {
	case modeIdle:
		o.begin(modeVirtual, o.startTime(time.Time{}))
	case modeReal:
		return time.Time{}, false
	}
	return o.clock.cursor.Add(d), true
}

// nextBefore runs the simulation until the next delivery, if that comes
// no later than horizon; otherwise it moves the clock to horizon.
func (o *Org) nextBefore(horizon time.Time) (Entry, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		dt, dok := o.out.peek()
		st, sok := o.sched.peek()
		if sok && (!dok || !st.After(dt)) && !st.After(horizon) {
			o.handle(o.sched.pop())
			continue
		}
		if dok && !dt.After(horizon) {
			e := o.out.pop()
			o.clock.cursor = dt
			o.count(&e)
			o.pruneFinished(dt)
			return e, true
		}
		if horizon.After(o.clock.cursor) {
			o.clock.cursor = horizon
		}
		return Entry{}, false
	}
}

// Run drives the simulation in real time, Config.Speed times faster than
// the wall clock, and passes every entry to sink when it is due. It
// returns nil when ctx is done, or the first error of sink. Run can be
// called once, and not after Generate.
//
// A sink slower than the simulation holds it back: the simulation advances
// at most deliveryStep (on the wall clock) beyond the entries sink has
// taken, so the entries waiting for sink stay bounded whatever the rate.
// It then runs behind real time, by Behind, and catches up, faster than
// real time, once sink keeps up again. Entries carry the simulated times
// at which they happen, late by Behind; none is skipped.
func (o *Org) Run(ctx context.Context, sink func(context.Context, Entry) error) error {
	if err := o.startReal(); err != nil {
		return err
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		due, wait := o.due()
		for i := range due {
			if ctx.Err() != nil {
				o.delivered(due[:i])
				return nil
			}
			if err := sink(ctx, due[i]); err != nil {
				o.delivered(due[:i])
				return fmt.Errorf("delivering entry %s: %w", due[i].Kind(), err)
			}
		}
		o.delivered(due)
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-o.wake:
		}
	}
}

func (o *Org) startReal() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mode != modeIdle {
		return ErrStarted
	}
	now := time.Now()
	o.clock = clock{real: true, wall0: now, virt0: o.startTime(now.UTC().Round(0)), speed: o.cfg.Speed}
	o.begin(modeReal, o.clock.virt0)
	o.clock.real = true
	o.handed = o.clock.virt0
	return nil
}

// due runs the simulation up to the present and returns the entries due,
// and how long to wait for the next (not at all while behind).
func (o *Org) due() ([]Entry, time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.present()
	o.advance(now)
	o.handed = now
	var out []Entry
	for {
		at, ok := o.out.peek()
		if !ok || at.After(now) {
			break
		}
		out = append(out, o.out.pop())
	}
	o.pruneFinished(now)
	next := now.Add(time.Second)
	if at, ok := o.out.peek(); ok && at.Before(next) {
		next = at
	}
	if at, ok := o.sched.peek(); ok && at.Before(next) {
		next = at
	}
	return out, min(max(o.clock.wallUntil(next), time.Millisecond), time.Second)
}

// signal wakes the real-time runner to look at a change made outside it.
func (o *Org) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// syncNow brings the simulation up to the current simulated time, for a
// caller outside the runner (the jobs API).
func (o *Org) syncNow() time.Time {
	if o.mode == modeIdle {
		return o.startTime(time.Time{})
	}
	now := o.present()
	o.advance(now)
	return now
}
