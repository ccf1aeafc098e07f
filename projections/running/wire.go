package running

import (
	"time"
	"unicode/utf8"

	"github.com/bqobserver/bqobserver/events"
)

// jobJSON is a job as the API sends it. Its field names are those of
// events.Job's JSON, so that a tool reading one reads the other, plus the
// stale flag and, in lists and streams, whether the query text was shortened.
type jobJSON struct {
	Key              keyJSON           `json:"key"`
	State            string            `json:"state"`
	Stale            bool              `json:"stale"`
	Error            *errorJSON        `json:"error,omitempty"`
	Principal        string            `json:"principal,omitempty"`
	JobType          string            `json:"job_type,omitempty"`
	StatementType    string            `json:"statement_type,omitempty"`
	Priority         string            `json:"priority,omitempty"`
	Query            string            `json:"query,omitempty"`
	QueryTruncated   bool              `json:"query_truncated,omitempty"`
	QueryPreview     bool              `json:"query_preview,omitempty"`
	QueryBytes       int               `json:"query_bytes,omitempty"`
	Labels           map[string]string `json:"labels,omitempty"`
	Reservation      string            `json:"reservation,omitempty"`
	ReferencedTables []string          `json:"referenced_tables,omitempty"`
	DestinationTable string            `json:"destination_table,omitempty"`
	SourceTables     []string          `json:"source_tables,omitempty"`
	SourceURIs       []string          `json:"source_uris,omitempty"`
	DestinationURIs  []string          `json:"destination_uris,omitempty"`
	ParentJobID      string            `json:"parent_job_id,omitempty"`
	CreateTime       time.Time         `json:"create_time,omitzero"`
	StartTime        time.Time         `json:"start_time,omitzero"`
	EndTime          time.Time         `json:"end_time,omitzero"`
	BytesProcessed   *int64            `json:"bytes_processed,omitempty"`
	BytesBilled      *int64            `json:"bytes_billed,omitempty"`
	SlotMs           *int64            `json:"slot_ms,omitempty"`
	BillingTier      *int64            `json:"billing_tier,omitempty"`
	CacheHit         *bool             `json:"cache_hit,omitempty"`
	OutputRows       *int64            `json:"output_rows,omitempty"`
	ActiveUnits      *int64            `json:"active_units,omitempty"`
	CompletedUnits   *int64            `json:"completed_units,omitempty"`
	PendingUnits     *int64            `json:"pending_units,omitempty"`
	FirstSeen        time.Time         `json:"first_seen,omitzero"`
	LastSeen         time.Time         `json:"last_seen,omitzero"`
	CancelRequested  bool              `json:"cancel_requested,omitempty"`
	Reconciled       bool              `json:"reconciled,omitempty"`
}

type keyJSON struct {
	Project  string `json:"project"`
	Location string `json:"location"`
	JobID    string `json:"job_id"`
}

type errorJSON struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

func keyOf(k events.JobKey) keyJSON {
	return keyJSON{Project: k.Project, Location: k.Location, JobID: k.JobID}
}

// jobOf converts a job for the API. preview > 0 shortens the query text to
// at most that many bytes (on a character boundary), marking it so.
func jobOf(v *view, preview int) *jobJSON {
	j := &v.job
	w := &jobJSON{
		Key: keyOf(j.Key), State: string(j.State), Stale: v.stale,
		Principal: j.Principal, JobType: j.JobType, StatementType: j.StatementType, Priority: j.Priority,
		Query: j.Query, QueryTruncated: j.QueryTruncated, Labels: j.Labels, Reservation: j.Reservation,
		ReferencedTables: j.ReferencedTables, DestinationTable: j.DestinationTable, SourceTables: j.SourceTables,
		SourceURIs: j.SourceURIs, DestinationURIs: j.DestinationURIs, ParentJobID: j.ParentJobID,
		CreateTime: j.CreateTime, StartTime: j.StartTime, EndTime: j.EndTime,
		BytesProcessed: j.BytesProcessed, BytesBilled: j.BytesBilled, SlotMs: j.SlotMs, BillingTier: j.BillingTier,
		CacheHit: j.CacheHit, OutputRows: j.OutputRows,
		ActiveUnits: j.ActiveUnits, CompletedUnits: j.CompletedUnits, PendingUnits: j.PendingUnits,
		FirstSeen: j.FirstSeen, LastSeen: j.LastSeen, CancelRequested: j.CancelRequested, Reconciled: j.Reconciled,
	}
	if j.Error != nil {
		w.Error = &errorJSON{Code: j.Error.Code, Message: j.Error.Message}
	}
	if preview > 0 && len(j.Query) > preview {
		w.Query, w.QueryPreview, w.QueryBytes = clip(j.Query, preview), true, len(j.Query)
	}
	return w
}

// clip shortens s to at most n bytes without splitting a character.
func clip(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// detailJSON is one job with its event timeline, oldest first.
type detailJSON struct {
	Job    *jobJSON       `json:"job"`
	Events []events.Event `json:"events"`
}

// summaryJSON is the aggregate view of the list.
type summaryJSON struct {
	Now time.Time `json:"now"`
	tally
	ByProject     []group  `json:"by_project"`
	ByUser        []group  `json:"by_user"`
	ByReservation []group  `json:"by_reservation"`
	ByLocation    []group  `json:"by_location"`
	OldestRunning *jobJSON `json:"oldest_running"`
	LongestQueued *jobJSON `json:"longest_queued"`
	Lag           lagJSON  `json:"lag"`
}

func summaryOf(s *summary, now time.Time, preview int) *summaryJSON {
	w := &summaryJSON{
		Now: now, tally: s.all,
		ByProject: s.groups[dimProject], ByUser: s.groups[dimUser],
		ByReservation: s.groups[dimReservation], ByLocation: s.groups[dimLocation],
	}
	if s.oldest != nil {
		w.OldestRunning = jobOf(s.oldest, preview)
	}
	if s.queued != nil {
		w.LongestQueued = jobOf(s.queued, preview)
	}
	return w
}
