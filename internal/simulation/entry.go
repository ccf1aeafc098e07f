package simulation

import (
	"math/bits"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// Entry is one audit-log entry as an organization's log sink publishes it
// to Pub/Sub.
type Entry struct {
	// Data is the LogEntry, serialised as Cloud Logging writes it into the
	// Pub/Sub message.
	Data []byte
	// Attributes are the message attributes the sink sets.
	Attributes map[string]string
	// Format is FormatV1 or FormatV2.
	Format string
	// Meant holds the job events the entry carries, as the product's
	// decoder should read them. It is empty for an entry that carries none.
	Meant []events.Event
	// Skip is, for an entry that carries no job event, the reason the
	// product's decoder should give for skipping it (auditlog.SkipReason).
	Skip string
	// Published is when the sink delivers the entry, in simulated time.
	Published time.Time
	// Redelivery is set on a second delivery of an entry.
	Redelivery bool
}

// AttrTimestamp is the message attribute the log sink sets to the entry's
// timestamp.
const AttrTimestamp = "logging.googleapis.com/timestamp"

// Kind names what an entry carries, for counting: the kind of its event,
// or "skipped".
func (e *Entry) Kind() string {
	if len(e.Meant) == 0 {
		return "skipped"
	}
	return string(e.Meant[0].Kind)
}

// transition is a moment of a job's life that audit entries record.
type transition uint8

const (
	trInserted      transition = iota // created: v2 jobInsertion, v1 jobservice.insert
	trRunning                         // a queued job started: v2 jobChange RUNNING
	trQueryReturned                   // a jobs.query call returned: v1 jobservice.query
	trCancelCall                      // jobs.cancel was called: v2 CancelJob, v1 jobservice.cancel
	trCompleted                       // finished: v2 jobChange DONE, v1 jobservice.jobcompleted
)

// header is the envelope of one entry.
type header struct {
	insertID  string
	timestamp time.Time // when the entry was written, to the microsecond
	receive   time.Time // when Cloud Logging received it
}

// newHeader stamps an entry of j for something that happened at t: written
// a few milliseconds later, received by Cloud Logging within a second.
// A job's entries are written and received in the order of its events.
func (o *Org) newHeader(j *job, t time.Time) header {
	ts := logTime(t.Add(o.rng.span(5*time.Millisecond, 60*time.Millisecond)))
	if !ts.After(j.lastWritten) {
		ts = j.lastWritten.Add(time.Microsecond)
	}
	rcv := ts.Add(o.rng.span(80*time.Millisecond, 900*time.Millisecond))
	if !rcv.After(j.lastReceived) {
		rcv = j.lastReceived.Add(time.Microsecond)
	}
	j.lastWritten, j.lastReceived = ts, rcv
	o.insertSeq++
	return header{insertID: insertID(o.cfg.Seed, o.insertSeq), timestamp: ts, receive: rcv}
}

// insertID derives the n-th entry's insertId: 12 base-36 characters, as
// Cloud Logging writes them, sometimes after a dash. The mapping from n is
// a bijection modulo 36^12 (the multiplier is coprime to 36), so insertIds
// never repeat within a simulation.
func insertID(seed, n uint64) string {
	const space = 4738381338321616896 // 36^12
	const mult = 2685821657736338717
	hi, lo := bits.Mul64(n+seed*0x9E3779B97F4A7C15%space, mult)
	x := bits.Rem64(hi, lo, space)
	var b [13]byte
	for i := 12; i >= 1; i-- {
		b[i] = base36Digits[x%36]
		x /= 36
	}
	if n%4 == 1 {
		b[0] = '-'
		return string(b[:])
	}
	return string(b[1:])
}

// emit writes the entries that record a transition of j at t, in every
// configured format, and hands them to delivery.
func (o *Org) emit(j *job, tr transition, t time.Time) {
	for _, f := range o.cfg.Formats {
		c, ok := o.contentOf(f, j, tr, t)
		if !ok {
			continue
		}
		o.deliver(j, c.render(), c.h.receive)
	}
}

// emitCancel writes the entries of a jobs.cancel call by by (or by the
// jobs API's operator).
func (o *Org) emitCancel(j *job, t time.Time, by *principal, operator bool) {
	if operator {
		by = o.operatorPrincipal()
	}
	for _, f := range o.cfg.Formats {
		c := content{format: f, tr: trCancelCall, j: j, h: o.newHeader(j, t), principal: by}
		o.deliver(j, c.render(), c.h.receive)
	}
}

// operatorPrincipal is whoever calls the jobs API.
func (o *Org) operatorPrincipal() *principal {
	return &principal{email: o.cfg.Operator, callerIP: "private", client: clientPython}
}

// content is what one entry says about its job at one transition: the
// single description both the rendered JSON and the meant event derive
// from.
type content struct {
	format    string
	tr        transition
	j         *job
	h         header
	principal *principal

	state       events.State
	query       string
	truncated   bool
	statement   string
	dest        tableRef
	start, end  time.Time
	use         *usage
	err         *failure
	reservation string
}

// contentOf describes the entry of format f for a transition, or reports
// that the format writes none for it.
func (o *Org) contentOf(f string, j *job, tr transition, t time.Time) (content, bool) {
	if !writes(f, j, tr) {
		return content{}, false
	}
	c := content{format: f, tr: tr, j: j, h: o.newHeader(j, t), principal: j.principal, state: j.state}
	c.describe()
	return c, true
}

// writes reports whether format f has an entry for the transition.
func writes(f string, j *job, tr transition) bool {
	switch tr {
	case trInserted:
		return f == FormatV2 || (j.parent == nil && !j.viaQuery)
	case trRunning:
		return f == FormatV2
	case trQueryReturned:
		return f == FormatV1
	}
	return true
}

// describe fills what the entry carries from the job's current state.
func (c *content) describe() {
	j := c.j
	done := j.state == events.StateDone && (c.tr == trCompleted || c.tr == trQueryReturned)
	if !j.started.IsZero() {
		c.start = jobTime(j.started)
	}
	if done {
		c.end = jobTime(j.ended)
		if c.start.IsZero() {
			c.start = c.end
		}
		c.use, c.err = &j.final, j.err
	}
	c.query = j.query
	if c.format == FormatV2 && len(c.query) > maxV2Query {
		c.query, c.truncated = c.query[:maxV2Query], true
	}
	parsed := j.failure == nil || !j.failure.unparsed
	v1Request := c.format == FormatV1 && c.tr == trInserted
	if j.isQuery() && parsed && !v1Request {
		c.statement = j.statement
	}
	if parsed && (!v1Request || !j.isQuery()) {
		c.dest = j.sql.dest
	}
	c.reservation = c.reservationCarried(done)
}

// reservationCarried is the reservation the entry names: a query's once it
// runs (v1 only says at completion), a load's shared pool once it used it.
func (c *content) reservationCarried(done bool) string {
	j := c.j
	switch {
	case j.jobType == events.JobTypeLoad:
		if done && c.use.hasSlot {
			return j.reservation
		}
	case !j.isQuery() || c.start.IsZero():
	case c.format == FormatV2 && c.tr != trCancelCall:
		return j.reservation
	case done:
		return j.reservation
	}
	return ""
}

// render writes the entry and what it means.
func (c *content) render() Entry {
	var data []byte
	if c.format == FormatV1 {
		data = c.renderV1()
	} else {
		data = c.renderV2()
	}
	e := Entry{
		Data:       data,
		Attributes: map[string]string{AttrTimestamp: c.h.timestamp.Format(layoutLog)},
		Format:     c.format,
	}
	if ev, ok := c.meant(); ok {
		e.Meant = []events.Event{ev}
	} else {
		e.Skip = "not_a_job_event"
	}
	return e
}
