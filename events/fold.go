package events

import (
	"encoding/binary"
	"encoding/hex"
	"maps"
	"slices"
	"time"
)

// Job is a job's current state: the fold of its events.
//
// Every fact is a last-writer-wins register ordered by a stamp derived from
// the event that wrote it: first the state's rank (so DONE outranks RUNNING
// whatever the clocks say), then the event time, then the event id. Unknown
// (zero) values never write. Because each register keeps the value with the
// greatest stamp, applying the same events in any order, any number of times,
// gives the same Job: Apply is commutative, associative and idempotent.
type Job struct {
	Key   JobKey    `json:"key"`
	State State     `json:"state"`
	Error *JobError `json:"error,omitempty"`
	Facts
	// FirstSeen and LastSeen are the earliest and latest event times.
	FirstSeen time.Time `json:"first_seen,omitzero"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	// CancelRequested is set once anyone asked for the job to be cancelled.
	CancelRequested bool `json:"cancel_requested,omitempty"`
	// Reconciled is set when enrichment closed the job because its
	// completion entry never arrived.
	Reconciled bool `json:"reconciled,omitempty"`

	stamps [numFields]uint64
}

// The registers of a Job, indexing Job.stamps.
const (
	fState = iota
	fError
	fPrincipal
	fJobType
	fStatementType
	fPriority
	fQuery
	fLabels
	fReservation
	fReferencedTables
	fDestinationTable
	fSourceTables
	fSourceURIs
	fDestinationURIs
	fParentJobID
	fCreateTime
	fStartTime
	fEndTime
	fBytesProcessed
	fBytesBilled
	fSlotMs
	fBillingTier
	fCacheHit
	fOutputRows
	fActiveUnits
	fCompletedUnits
	fPendingUnits
	numFields
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
func (j *Job) Apply(e *Event) {
	if j.Key == (JobKey{}) {
		j.Key = e.Job
	}
	if e.Job != j.Key {
		return
	}
	at := stamp(e)
	j.seen(e)
	set(&j.State, &j.stamps[fState], e.State, at)
	if e.Error != nil && *e.Error != (JobError{}) {
		setPtr(&j.Error, &j.stamps[fError], e.Error, at, func(a, b JobError) bool { return a.Code+a.Message < b.Code+b.Message })
	}
	j.applyFacts(&e.Facts, at)
}

func (j *Job) seen(e *Event) {
	if j.FirstSeen.IsZero() || e.Time.Before(j.FirstSeen) {
		j.FirstSeen = e.Time
	}
	if e.Time.After(j.LastSeen) {
		j.LastSeen = e.Time
	}
	j.CancelRequested = j.CancelRequested || e.Kind == KindCancelRequested
	j.Reconciled = j.Reconciled || e.Kind == KindReconciled
}

func (j *Job) applyFacts(f *Facts, at uint64) {
	s := &j.stamps
	set(&j.Principal, &s[fPrincipal], f.Principal, at)
	set(&j.JobType, &s[fJobType], f.JobType, at)
	set(&j.StatementType, &s[fStatementType], f.StatementType, at)
	set(&j.Priority, &s[fPriority], f.Priority, at)
	j.applyQuery(f, at)
	if len(f.Labels) > 0 && wins(s[fLabels], at) {
		j.Labels, s[fLabels] = maps.Clone(f.Labels), at
	}
	set(&j.Reservation, &s[fReservation], f.Reservation, at)
	setSlice(&j.ReferencedTables, &s[fReferencedTables], f.ReferencedTables, at)
	set(&j.DestinationTable, &s[fDestinationTable], f.DestinationTable, at)
	setSlice(&j.SourceTables, &s[fSourceTables], f.SourceTables, at)
	setSlice(&j.SourceURIs, &s[fSourceURIs], f.SourceURIs, at)
	setSlice(&j.DestinationURIs, &s[fDestinationURIs], f.DestinationURIs, at)
	set(&j.ParentJobID, &s[fParentJobID], f.ParentJobID, at)
	setTime(&j.CreateTime, &s[fCreateTime], f.CreateTime, at)
	setTime(&j.StartTime, &s[fStartTime], f.StartTime, at)
	setTime(&j.EndTime, &s[fEndTime], f.EndTime, at)
	setInt(&j.BytesProcessed, &s[fBytesProcessed], f.BytesProcessed, at)
	setInt(&j.BytesBilled, &s[fBytesBilled], f.BytesBilled, at)
	setInt(&j.SlotMs, &s[fSlotMs], f.SlotMs, at)
	setInt(&j.BillingTier, &s[fBillingTier], f.BillingTier, at)
	setPtr(&j.CacheHit, &s[fCacheHit], f.CacheHit, at, func(a, b bool) bool { return !a && b })
	setInt(&j.OutputRows, &s[fOutputRows], f.OutputRows, at)
	setInt(&j.ActiveUnits, &s[fActiveUnits], f.ActiveUnits, at)
	setInt(&j.CompletedUnits, &s[fCompletedUnits], f.CompletedUnits, at)
	setInt(&j.PendingUnits, &s[fPendingUnits], f.PendingUnits, at)
}

// applyQuery prefers a complete query text over a truncated one, whatever
// their order: v1 entries carry the whole text where v2 cuts it at 50K.
func (j *Job) applyQuery(f *Facts, at uint64) {
	if f.Query == "" {
		return
	}
	qat := at >> 1
	if !f.QueryTruncated {
		qat |= 1 << 63
	}
	cur := j.stamps[fQuery]
	if cur < qat || (cur == qat && f.Query > j.Query) {
		j.Query, j.QueryTruncated, j.stamps[fQuery] = f.Query, f.QueryTruncated, qat
	}
}

// stamp orders events for the registers: state rank in the top 2 bits, event
// time in milliseconds since 2000 in the next 41 (69 years), and 21 bits of
// the event id to order distinct events of the same millisecond.
func stamp(e *Event) uint64 {
	const epoch = 946684800000 // 2000-01-01T00:00:00Z in ms
	ms := max(e.Time.UnixMilli()-epoch, 0) & (1<<41 - 1)
	var idBits uint64
	if b, err := hex.DecodeString(e.ID); err == nil && len(b) >= 8 {
		idBits = binary.BigEndian.Uint64(b) & (1<<21 - 1)
	} else {
		idBits = fnv21(e.ID)
	}
	// 1 is added so that every real event outranks an empty register.
	return uint64(e.State.rank())<<62 | uint64(ms)<<21 | idBits | 1
}

func fnv21(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h & (1<<21 - 1)
}

// wins reports whether a write stamped at replaces a register stamped cur.
// Equal stamps come from the same event, so the register keeps its value.
func wins(cur, at uint64) bool { return at > cur }

func set[T ~string](dst *T, cur *uint64, v T, at uint64) {
	if v != "" && (at > *cur || (at == *cur && v > *dst)) {
		*dst, *cur = v, at
	}
}

func setTime(dst *time.Time, cur *uint64, v time.Time, at uint64) {
	if !v.IsZero() && (at > *cur || (at == *cur && v.After(*dst))) {
		*dst, *cur = v, at
	}
}

func setInt(dst **int64, cur *uint64, v *int64, at uint64) {
	setPtr(dst, cur, v, at, func(a, b int64) bool { return a < b })
}

func setPtr[T any](dst **T, cur *uint64, v *T, at uint64, less func(a, b T) bool) {
	if v == nil {
		return
	}
	if at > *cur || (at == *cur && (*dst == nil || less(**dst, *v))) {
		c := *v
		*dst, *cur = &c, at
	}
}

func setSlice(dst *[]string, cur *uint64, v []string, at uint64) {
	if len(v) > 0 && (at > *cur || (at == *cur && slices.Compare(*dst, v) < 0)) {
		*dst, *cur = slices.Clone(v), at
	}
}
