package simulation

import (
	"strconv"

	"github.com/bqobserver/bqobserver/events"
)

// meant is the job event the entry carries, as the product's decoder
// should read it, or false for an entry that carries none: a v1 cancel
// call names its job without a location, so it identifies no job.
func (c *content) meant() (events.Event, bool) {
	if c.tr == trCancelCall && c.format == FormatV1 {
		return events.Event{}, false
	}
	log := logName(c.j.key.Project)
	ev := events.Event{
		ID:     events.AuditEventID(log, c.h.insertID, 0),
		Kind:   c.kind(),
		Job:    c.j.key,
		Time:   c.h.timestamp,
		Source: events.Source{Format: c.format, Method: c.method(), LogName: log, InsertID: c.h.insertID},
	}
	if c.tr == trCancelCall {
		ev.CancelRequestedBy, ev.CancelRequestTime = c.principal.email, ev.Time
		return ev, true
	}
	ev.Principal = c.principal.email
	ev.State = c.state
	if f := c.err; f != nil {
		ev.Error = &events.JobError{Code: strconv.Itoa(c.code(f)), Message: f.message}
	}
	c.facts(&ev.Facts)
	return ev, true
}

func (c *content) kind() events.Kind {
	switch {
	case c.tr == trCancelCall:
		return events.KindCancelRequested
	case c.state == events.StateDone:
		return events.KindCompleted
	case c.tr == trRunning:
		return events.KindStateChanged
	}
	return events.KindInserted
}

// method is the event's Source.Method: the methodName, and for v2 job
// events the metadata key.
func (c *content) method() string {
	switch {
	case c.format == FormatV1:
		return c.v1Method()
	case c.tr == trCancelCall:
		return methodCancelJob
	}
	return c.v2Method() + ":" + c.v2Event()
}

func (c *content) code(f *failure) int {
	if c.format == FormatV1 {
		return f.v1Code
	}
	return f.v2Code
}

// facts is what the entry tells about the job, field by field as the
// renderers write it.
func (c *content) facts(f *events.Facts) {
	j := c.j
	f.JobType = j.jobType
	f.StatementType = c.statement
	f.Query, f.QueryTruncated = c.query, c.truncated
	if j.isQuery() {
		f.Priority = j.priority
	}
	if len(j.labels) > 0 {
		f.Labels = make(map[string]string, len(j.labels))
		for _, l := range j.labels {
			f.Labels[l.key] = l.value
		}
	}
	f.Reservation = c.reservation
	if !c.dest.isZero() {
		f.DestinationTable = c.dest.dotted()
	}
	c.transferFacts(f)
	if j.parent != nil && c.format == FormatV2 {
		f.ParentJobID = j.parent.key.JobID
	}
	f.CreateTime, f.StartTime, f.EndTime = jobTime(j.created), c.start, c.end
	if c.use != nil {
		c.usageFacts(f, c.use)
	}
}

func (c *content) transferFacts(f *events.Facts) {
	j := c.j
	switch j.jobType {
	case events.JobTypeLoad:
		f.SourceURIs = j.sourceURIs
	case events.JobTypeExtract:
		f.DestinationURIs = j.destURIs
		f.SourceTables = []string{j.sql.refs[0].dotted()}
	case events.JobTypeCopy:
		f.SourceTables = dedupe(j.sql.refs, nil)
	}
}

func (c *content) usageFacts(f *events.Facts, u *usage) {
	if u.hasSlot {
		f.SlotMs = events.Int64(u.slotMs)
	}
	if !c.j.isQuery() {
		return
	}
	if u.hasBytes {
		f.BytesProcessed, f.BytesBilled, f.BillingTier = events.Int64(u.processed), events.Int64(u.billed), events.Int64(1)
		f.ReferencedTables = dedupe(c.j.sql.refs, c.j.sql.views)
	}
	if u.hasRows {
		f.OutputRows = events.Int64(u.rows)
	}
	if u.cacheHit && c.format == FormatV2 {
		f.CacheHit = events.Bool(true)
	}
}

// dedupe lists tables once each, in order, as project.dataset.table.
func dedupe(lists ...[]tableRef) []string {
	var out []string
	seen := map[tableRef]bool{}
	for _, l := range lists {
		for _, t := range l {
			if !seen[t] {
				seen[t] = true
				out = append(out, t.dotted())
			}
		}
	}
	return out
}
