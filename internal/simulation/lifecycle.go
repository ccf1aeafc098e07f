package simulation

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// begin starts the simulation at start, with the first job arriving at once.
func (o *Org) begin(mode runMode, start time.Time) {
	o.mode = mode
	o.clock.cursor = start
	o.sched.push(simEvent{at: start, kind: evArrival})
}

// advance runs every step scheduled up to and including t.
func (o *Org) advance(t time.Time) {
	for {
		at, ok := o.sched.peek()
		if !ok || at.After(t) {
			return
		}
		o.handle(o.sched.pop())
	}
}

func (o *Org) handle(ev simEvent) {
	switch ev.kind {
	case evArrival:
		o.arrive(ev.at)
	case evStart:
		o.start(ev.job, ev.at)
	case evEnd:
		if ev.gen == ev.job.gen && ev.job.state != events.StateDone {
			o.end(ev.job, ev.at)
		}
	case evUserCancel:
		o.cancel(ev.job, ev.at, ev.job.cancelBy, false)
	case evQueryReturn:
		if ev.job.queryPending {
			ev.job.queryPending = false
			o.emit(ev.job, trQueryReturned, ev.at)
		}
	case evNextChild:
		o.nextChild(ev.job, ev.at)
	}
}

// arrive submits the next job and schedules the one after it.
func (o *Org) arrive(t time.Time) {
	gap := o.rng.exp(time.Duration(float64(time.Second) / o.cfg.Rate))
	o.sched.push(simEvent{at: t.Add(gap), kind: evArrival})
	p := o.projectPick.pick(o.rng)
	j := o.planJob(p, t)
	o.register(j)
	o.decideDelivery(j)
	o.submit(j, t)
}

func (o *Org) register(j *job) {
	o.jobSeq++
	j.seq = o.jobSeq
	o.jobs[j.key] = j
	j.project.jobs = append(j.project.jobs, j)
	j.project.open = append(j.project.open, j)
	o.stats.Pending++
	if j.parent == nil {
		o.stats.Jobs++
	} else {
		o.stats.ChildJobs++
	}
}

// submit starts the job, or queues it when its pool is busy.
func (o *Org) submit(j *job, t time.Time) {
	if j.viaQuery {
		// jobs.query waits up to 10 s for the result before it returns.
		j.queryPending = true
		o.sched.push(simEvent{at: t.Add(10 * time.Second), kind: evQueryReturn, job: j})
	}
	pl := j.pool
	switch {
	case pl.admits(j):
		pl.running++
		j.admitted, j.insertOnStart = true, true
		o.sched.push(simEvent{at: t.Add(o.rng.span(40*time.Millisecond, 600*time.Millisecond)), kind: evStart, job: j})
	case pl.onDemand && j.batch():
		// On demand, a batch query waits until idle capacity frees up.
		pl.running++
		j.admitted = true
		o.sched.push(simEvent{at: t.Add(o.rng.span(2*time.Second, 90*time.Second)), kind: evStart, job: j})
	default:
		pl.enqueue(j)
	}
	if !j.insertOnStart {
		o.emit(j, trInserted, t)
	}
}

// start moves a job to RUNNING and schedules its end.
func (o *Org) start(j *job, t time.Time) {
	if j.state == events.StateDone || j.cancelling {
		return
	}
	j.started, j.state = t, events.StateRunning
	o.stats.Pending--
	o.stats.Running++
	if j.insertOnStart {
		o.emit(j, trInserted, t)
	} else {
		o.emit(j, trRunning, t)
	}
	if j.isScript() {
		o.sched.push(simEvent{at: t.Add(o.rng.span(30*time.Millisecond, 200*time.Millisecond)), kind: evNextChild, job: j})
		return
	}
	runFor := j.runFor
	if j.failure != nil {
		runFor = failTime(j.runFor, j.failure, j.failAt)
	}
	if j.cancelAfter > 0 && j.cancelAfter < runFor {
		o.sched.push(simEvent{at: t.Add(j.cancelAfter), kind: evUserCancel, job: j})
	}
	o.sched.push(simEvent{at: t.Add(runFor), kind: evEnd, job: j, gen: j.gen})
}

// end moves a job to DONE with what it did and how it ended.
func (o *Org) end(j *job, t time.Time) {
	if !j.started.IsZero() {
		o.stats.Running--
	} else {
		o.stats.Pending--
	}
	j.state, j.ended = events.StateDone, t
	j.final, j.err = j.outcome(t)
	j.project.closed(j)
	j.qplan, j.listed = nil, nil // kept for open jobs only: finished ones are many
	if j.lost && j.parent == nil {
		o.lost = append(o.lost, j.truth())
	}
	if j.queryPending {
		j.queryPending = false
		o.emit(j, trQueryReturned, t)
	}
	o.emit(j, trCompleted, t)
	o.releaseHeld(j)
	o.release(j, t)
	if j.parent != nil {
		o.childEnded(j, t)
	}
}

// outcome is what a job reports when it ends at t, and its error.
func (j *job) outcome(t time.Time) (usage, *failure) {
	switch {
	case j.isScript() && j.cancelling:
		return j.childUse, &cancelled
	case j.isScript():
		return j.childUse, j.failure
	case j.cancelling:
		return j.plan.scaled(j.progress(t)), &cancelled
	case j.failure != nil && j.failure.late:
		return j.plan.scaled(j.failAt), j.failure
	case j.failure != nil:
		return usage{}, j.failure
	}
	return j.plan, nil
}

// progress is the share of its planned run a job has done at t.
func (j *job) progress(t time.Time) float64 {
	if j.started.IsZero() || j.runFor <= 0 {
		return 0
	}
	return min(1, float64(t.Sub(j.started))/float64(j.runFor))
}

// release gives the job's place in its pool to the next queued jobs.
func (o *Org) release(j *job, t time.Time) {
	pl := j.pool
	if pl == nil {
		return
	}
	if !j.admitted {
		pl.remove(j)
		return
	}
	j.admitted = false
	pl.running--
	for n := pl.next(); n != nil; n = pl.next() {
		pl.running++
		n.admitted = true
		o.sched.push(simEvent{at: t.Add(o.rng.span(20*time.Millisecond, 300*time.Millisecond)), kind: evStart, job: n})
	}
}

// cancel handles a jobs.cancel call on called: the call is logged at once,
// naming the job called, and the job stops shortly after. Cancelling a
// script's statement stops the statement and its script, both cancelled.
// A job already done is left as it is, as BigQuery does.
func (o *Org) cancel(called *job, t time.Time, by *principal, operator bool) {
	j := called
	if j.parent != nil {
		j = j.parent
	}
	if called.state == events.StateDone || j.state == events.StateDone || j.cancelling {
		return
	}
	j.cancelling = true
	o.emitCancel(called, t, by, operator)
	stop := t.Add(o.rng.span(200*time.Millisecond, 2*time.Second))
	if c := j.current; c != nil && c.state != events.StateDone {
		c.cancelling = true
		c.gen++
		o.sched.push(simEvent{at: stop, kind: evEnd, job: c, gen: c.gen})
	}
	j.gen++
	o.sched.push(simEvent{at: stop, kind: evEnd, job: j, gen: j.gen})
}

// nextChild runs a script's next statement, or ends the script after its
// last one.
func (o *Org) nextChild(parent *job, t time.Time) {
	if parent.state == events.StateDone || parent.cancelling {
		return
	}
	if parent.nextIdx == len(parent.children) {
		o.sched.push(simEvent{at: t.Add(o.rng.span(50*time.Millisecond, 400*time.Millisecond)), kind: evEnd, job: parent, gen: parent.gen})
		return
	}
	c := o.newChild(parent, parent.nextIdx, t)
	parent.nextIdx++
	parent.current = c
	o.register(c)
	c.admitted, c.insertOnStart = false, true
	o.sched.push(simEvent{at: t.Add(o.rng.span(10*time.Millisecond, 80*time.Millisecond)), kind: evStart, job: c})
}

// childEnded moves a script on after one of its statements finished.
func (o *Org) childEnded(c *job, t time.Time) {
	parent := c.parent
	parent.current = nil
	parent.childUse.add(c.final)
	if parent.cancelling || parent.state == events.StateDone {
		return
	}
	if c.err != nil {
		parent.failure = scriptFailure(c.err)
		o.sched.push(simEvent{at: t.Add(o.rng.span(50*time.Millisecond, 300*time.Millisecond)), kind: evEnd, job: parent, gen: parent.gen})
		return
	}
	o.sched.push(simEvent{at: t.Add(o.rng.span(20*time.Millisecond, 200*time.Millisecond)), kind: evNextChild, job: parent})
}

// newChild creates the job of a script's i-th statement.
func (o *Org) newChild(parent *job, i int, t time.Time) *job {
	plan := parent.children[i]
	c := &job{
		parent: parent, project: parent.project, principal: parent.principal, client: parent.client,
		jobType: events.JobTypeQuery, statement: plan.statement, priority: parent.priority,
		sql: plan.sql, query: plan.sql.text, labels: parent.labels,
		createDisp: "CREATE_IF_NEEDED", writeDisp: "WRITE_EMPTY",
		reservation: parent.reservation, userAgent: parent.userAgent, callerIP: parent.callerIP,
		created: t, state: events.StatePending,
		runFor: plan.runFor, plan: plan.plan, failure: plan.failure, failAt: plan.failAt,
	}
	o.planSelectDestination(c)
	c.key = events.JobKey{Project: parent.key.Project, Location: parent.key.Location, JobID: childID(parent, i)}
	return c
}

// childID names a script's statement job: script_job_<hash>_<index>,
// with the hash shared by the script's statements.
func childID(parent *job, i int) string {
	return "script_job_" + parent.scriptHash + "_" + strconv.Itoa(i)
}

// pruneFinished forgets the jobs the jobs API no longer shows (see
// expired). It changes what the jobs API shows, never the entries.
func (o *Org) pruneFinished(now time.Time) {
	if now.Sub(o.lastPrune) < time.Minute {
		return
	}
	o.lastPrune = now
	for _, p := range o.projects {
		p.jobs = slices.DeleteFunc(p.jobs, func(j *job) bool {
			if !o.expired(j, now) {
				return false
			}
			delete(o.jobs, j.key)
			return true
		})
	}
}

// closed takes a finished job out of the project's open jobs.
func (p *project) closed(j *job) {
	i, found := slices.BinarySearchFunc(p.open, j.seq, func(o *job, seq uint64) int { return cmp.Compare(o.seq, seq) })
	if found {
		p.open = slices.Delete(p.open, i, i+1)
	}
}
