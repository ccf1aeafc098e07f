package enrich

import (
	"maps"
	"strconv"
	"strings"
	"time"

	bq "google.golang.org/api/bigquery/v2"

	"github.com/bqobserver/bqobserver/events"
)

// observed is a job as the jobs API reports it, from jobs.list (full
// projection) or jobs.get.
type observed struct {
	key    events.JobKey
	state  events.State
	email  string
	config *bq.JobConfiguration
	stats  *bq.JobStatistics
	status *bq.JobStatus
}

func fromListed(j *bq.JobListJobs) (observed, bool) {
	state := j.State
	if j.Status != nil && j.Status.State != "" {
		state = j.Status.State
	}
	return newObserved(j.JobReference, state, j.UserEmail, j.Configuration, j.Statistics, j.Status)
}

func fromJob(j *bq.Job) (observed, bool) {
	state := ""
	if j.Status != nil {
		state = j.Status.State
	}
	return newObserved(j.JobReference, state, j.UserEmail, j.Configuration, j.Statistics, j.Status)
}

// newObserved reports false for a job without a valid reference.
func newObserved(ref *bq.JobReference, state, email string, c *bq.JobConfiguration, st *bq.JobStatistics, s *bq.JobStatus) (observed, bool) {
	if ref == nil {
		return observed{}, false
	}
	k := events.JobKey{Project: ref.ProjectId, Location: ref.Location, JobID: ref.JobId}
	if k.Validate() != nil {
		return observed{}, false
	}
	if st == nil {
		st = &bq.JobStatistics{}
	}
	return observed{key: k, state: events.State(strings.ToUpper(state)), email: email, config: c, stats: st, status: s}, true
}

// msTime reads the API's milliseconds since 1970; 0 is not known. Any
// other value is read as it is, however implausible: the plausibility rule
// (events.DropImplausible), which the appender applies to every event,
// drops it with a warning and counts it, as it does for every writer.
func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// eventTime is the time of an event enrichment makes from the API's time t
// of the job: t itself when it is known and plausible, else now. An event's
// own time cannot be dropped, and the appender refuses an event whose time
// is implausible, with the rest of its batch: as the audit-log decoder
// takes an entry's next time, enrichment takes the moment it observed the
// job, and the implausible time stays among the event's facts, for the
// appender to drop and count.
func eventTime(t, now time.Time) time.Time {
	if t.IsZero() || events.ImplausibleTime(t, now) != "" {
		return now.UTC().Truncate(time.Millisecond)
	}
	return t
}

// created is when the job was created, zero if the API does not say.
func (o *observed) created() time.Time { return msTime(o.stats.CreationTime) }

// progress returns the facts a poll sees of a job's progress: its start,
// slot-ms, bytes processed, the stages its plan has begun and, from the
// last timeline sample, its work units. Zero numbers are not known; a failed or cancelled job reports no
// bytes, which is not a decrease. Negative ones are kept for the
// plausibility rule to drop and count (see msTime).
func (o *observed) progress() events.Facts {
	st := o.stats
	f := events.Facts{StartTime: msTime(st.StartTime), Reservation: st.ReservationId}
	if st.TotalSlotMs != 0 {
		f.SlotMs = events.Int64(st.TotalSlotMs)
	}
	if st.TotalBytesProcessed != 0 {
		f.BytesProcessed = events.Int64(st.TotalBytesProcessed)
	}
	if q := st.Query; q != nil && len(q.Timeline) > 0 {
		last := q.Timeline[len(q.Timeline)-1]
		f.ActiveUnits, f.CompletedUnits, f.PendingUnits = events.Int64(last.ActiveUnits), events.Int64(last.CompletedUnits), events.Int64(last.PendingUnits)
	}
	if q := st.Query; q != nil && len(q.QueryPlan) > 0 {
		f.Stages = events.Int64(int64(len(q.QueryPlan)))
	}
	return f
}

// facts returns everything the API says of the job, in the log's
// vocabulary: what an audit entry would have carried, and its statistics.
func (o *observed) facts() events.Facts {
	f := o.progress()
	st := o.stats
	f.Principal, f.ParentJobID = o.email, st.ParentJobId
	f.CreateTime, f.EndTime = o.created(), msTime(st.EndTime)
	if q := st.Query; q != nil {
		f.StatementType = q.StatementType
		f.ReferencedTables = tableNames(q.ReferencedTables)
		if q.TotalBytesBilled != 0 {
			f.BytesBilled = events.Int64(q.TotalBytesBilled)
		}
		if q.BillingTier != 0 {
			f.BillingTier = events.Int64(q.BillingTier)
		}
		if o.state == events.StateDone && o.status != nil && o.status.ErrorResult == nil {
			f.CacheHit = events.Bool(q.CacheHit)
		}
	}
	if c := o.config; c != nil {
		configFacts(c, &f)
	}
	return f
}

// configFacts adds what a job's configuration says.
func configFacts(c *bq.JobConfiguration, f *events.Facts) {
	f.JobType = c.JobType
	if len(c.Labels) > 0 {
		f.Labels = maps.Clone(c.Labels)
	}
	switch {
	case c.Query != nil:
		q := c.Query
		f.Query = q.Query
		if q.Priority != "" {
			f.Priority = "QUERY_" + q.Priority // as audit entries name it
		}
		f.DestinationTable = tableName(q.DestinationTable)
	case c.Load != nil:
		f.SourceURIs, f.DestinationTable = c.Load.SourceUris, tableName(c.Load.DestinationTable)
	case c.Extract != nil:
		f.DestinationURIs = c.Extract.DestinationUris
		if t := tableName(c.Extract.SourceTable); t != "" {
			f.SourceTables = []string{t}
		}
	case c.Copy != nil:
		f.SourceTables, f.DestinationTable = tableNames(c.Copy.SourceTables), tableName(c.Copy.DestinationTable)
	}
}

// tableName is a table as events name it: project.dataset.table.
func tableName(t *bq.TableReference) string {
	if t == nil || t.TableId == "" {
		return ""
	}
	return t.ProjectId + "." + t.DatasetId + "." + t.TableId
}

func tableNames(ts []*bq.TableReference) []string {
	var out []string
	for _, t := range ts {
		if n := tableName(t); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// jobError is the error a finished job reports, nil if none.
func (o *observed) jobError() *events.JobError {
	if o.status == nil || o.status.ErrorResult == nil {
		return nil
	}
	e := o.status.ErrorResult
	return &events.JobError{Code: e.Reason, Message: e.Message}
}

// Where enrichment's events come from (events.Source.Format).
const sourceFormat = "api"

// changed reports whether the progress p a poll saw differs from what the
// log holds for j: a number known now that the log lacks or has another
// value for, a start or a reservation the log lacks, or a start the log
// has not seen. A job the log knows as running is never moved back. p is
// judged as the log would keep it: a value the plausibility rule drops is
// not known, so an implausible number the API repeats at every poll is
// not a change at every poll.
func changed(j *events.Job, p *events.Facts, state events.State) bool {
	return moved(j, p) || learnt(j, p, state)
}

// moved reports whether a number of p differs from the log's.
func moved(j *events.Job, p *events.Facts) bool {
	return differs(j.SlotMs, p.SlotMs) || differs(j.BytesProcessed, p.BytesProcessed) ||
		differs(j.ActiveUnits, p.ActiveUnits) || differs(j.CompletedUnits, p.CompletedUnits) ||
		differs(j.PendingUnits, p.PendingUnits) || differs(j.Stages, p.Stages)
}

// learnt reports whether p tells what the log does not know of j at all:
// its start, its reservation, that it runs.
func learnt(j *events.Job, p *events.Facts, state events.State) bool {
	return (j.StartTime.IsZero() && !p.StartTime.IsZero()) ||
		(j.Reservation == "" && p.Reservation != "") ||
		(state == events.StateRunning && j.State == events.StatePending)
}

// Progress samples thin out as a job ages: a job's row holds every event
// it ever had, and every reader of the job reads them all, so a job that
// runs for days must not add a sample at every poll. A sample whose only
// news is its numbers is appended once the job's last event is at least
// a hundredth of its age old (every poll for its first minutes, every 36 s
// at one hour), and at most samplesAtMost apart: a job's events grow with
// the logarithm of its duration, then by six an hour.
const (
	samplesPerAge = 100
	samplesAtMost = 10 * time.Minute
)

// sampleGap is how long after j's last event a sample of numbers only is
// due at now.
func sampleGap(j *events.Job, now time.Time) time.Duration {
	since := j.StartTime
	for _, t := range []time.Time{j.CreateTime, j.FirstSeen} {
		if since.IsZero() || !t.IsZero() && t.Before(since) {
			since = t
		}
	}
	if since.IsZero() {
		return 0
	}
	return min(now.Sub(since)/samplesPerAge, samplesAtMost)
}

func differs(have, seen *int64) bool { return seen != nil && (have == nil || *have != *seen) }

// progressEvent is the progress event of job j observed as o at now, if
// it tells something new (learnt), or if its numbers changed and a sample
// is due (sampleGap). The reservation is carried only when the log has
// none, so that the audit log's name of it is kept. Its identity is the
// job, the moment and the numbers: observing the same again at the same
// moment gives the same event.
func progressEvent(j *events.Job, o *observed, now time.Time) (events.Event, bool) {
	p := o.progress()
	state := o.state
	if state != events.StateRunning && state != events.StatePending {
		state = ""
	}
	at := now.UTC().Truncate(time.Millisecond)
	kept := events.Event{Time: at, Facts: p}
	kept.DropImplausible() // clears kept's copy of the facts, not p's values
	switch {
	case learnt(j, &kept.Facts, state):
	case !moved(j, &kept.Facts), now.Sub(j.LastSeen) < sampleGap(j, now):
		return events.Event{}, false
	}
	if j.Reservation != "" {
		p.Reservation = ""
	}
	ev := events.Event{Kind: events.KindProgress, Job: o.key, Time: at, State: state, Facts: p,
		Source: events.Source{Format: sourceFormat, Method: "jobs.list"}}
	ev.ID = events.DerivedEventID(string(events.KindProgress), o.key.String(), strconv.FormatInt(at.UnixMilli(), 10),
		string(state), numbers(&p))
	return ev, true
}

// numbers writes the progress facts that identify an observation.
func numbers(p *events.Facts) string {
	var b strings.Builder
	for _, v := range []*int64{p.SlotMs, p.BytesProcessed, p.ActiveUnits, p.CompletedUnits, p.PendingUnits, p.Stages} {
		if v != nil {
			b.WriteString(strconv.FormatInt(*v, 10))
		}
		b.WriteByte('/')
	}
	b.WriteString(p.StartTime.Format(time.RFC3339Nano))
	b.WriteByte('/')
	b.WriteString(p.Reservation)
	return b.String()
}

// discoveredEvents are what the log would hold of a job whose audit
// entries never came: an inserted event at its creation, as the API
// describes the job, then its progress as observed now.
func discoveredEvents(o *observed, now time.Time) []events.Event {
	at := eventTime(o.created(), now)
	ins := events.Event{Kind: events.KindInserted, Job: o.key, Time: at, State: o.state, Facts: o.facts(),
		Source: events.Source{Format: sourceFormat, Method: "jobs.list"}}
	// The statistics belong to the progress event, at the moment they
	// were seen.
	ins.SlotMs, ins.BytesProcessed, ins.Progress = nil, nil, events.Progress{}
	ins.ID = events.DerivedEventID("discovered", o.key.String(), strconv.FormatInt(at.UnixMilli(), 10))
	out := []events.Event{ins}
	if ev, ok := progressEvent(&events.Job{Key: o.key}, o, now); ok {
		out = append(out, ev)
	}
	return out
}

// reconciledEvent closes a job the API reports DONE, with the API's final
// state, statistics and error, at the time the API says it ended (now if
// it does not say, or says what cannot be true; see eventTime). Its
// identity is the job and that time.
func reconciledEvent(o *observed, now time.Time) events.Event {
	at := eventTime(msTime(o.stats.EndTime), now)
	ev := events.Event{Kind: events.KindReconciled, Job: o.key, Time: at, State: events.StateDone, Error: o.jobError(),
		Facts: o.facts(), Source: events.Source{Format: sourceFormat, Method: "jobs.get"}}
	ev.ReconciledReason = ReasonDone
	ev.ID = events.DerivedEventID(string(events.KindReconciled), o.key.String(), strconv.FormatInt(at.UnixMilli(), 10))
	return ev
}

// Why enrichment closed a job (events.Facts.ReconciledReason, and the
// reason label of the reconciled-jobs metric).
const (
	// ReasonDone: the jobs API reported the job DONE.
	ReasonDone = "done"
	// ReasonNotFound: the jobs API answered NotFoundLimit times in a row
	// that it does not know the job (expired, or its project deleted).
	ReasonNotFound = "not_found"
)

// notFoundEvent closes job j, which the API answered 404 for NotFoundLimit
// times in a row: DONE for the product, with the reason and no error,
// since how it ended is not known. Its identity is the job and the
// reason, and its time the last the log heard of the job (now if that is
// not known), not when a replica looked: a retried append, or another
// replica's after a takeover, writes the same event.
func notFoundEvent(j *events.Job, now time.Time) events.Event {
	ev := events.Event{Kind: events.KindReconciled, Job: j.Key, Time: eventTime(j.LastSeen, now), State: events.StateDone,
		Facts: events.Facts{ReconciledReason: ReasonNotFound}, Source: events.Source{Format: sourceFormat, Method: "jobs.get"}}
	ev.ID = events.DerivedEventID(string(events.KindReconciled), j.Key.String(), ReasonNotFound)
	return ev
}
