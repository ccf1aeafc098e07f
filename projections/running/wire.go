package running

//go:generate go run ../../events/internal/genjob running

// The API's form of a job (jobJSON, jobOf), its encoder (appendJobFields),
// its equality check (sameJob) and its schema in openapi.json are generated
// from package jobfields.

import (
	"time"
	"unicode/utf8"

	"github.com/bqobserver/bqobserver/events"
)

// clip shortens s to at most n bytes without splitting a character.
func clip(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// detailJSON is one job with its event timeline, oldest first, and, with
// enrichment, the job as the BigQuery jobs API reports it now or why it
// could not be asked.
type detailJSON struct {
	Job       *jobJSON    `json:"job"`
	Events    []eventJSON `json:"events"`
	Live      *Live       `json:"live,omitempty"`
	LiveError string      `json:"live_error,omitempty"`
}

// eventJSON is an event of a job's timeline: the event as the log keeps it,
// and whether its query text was left out because the caller may not read
// it.
type eventJSON struct {
	events.Event
	QueryHidden bool `json:"query_hidden,omitempty"`
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
	AuditLoss     lossJSON `json:"audit_loss"`
}

func summaryOf(s *summary, now time.Time, preview int) *summaryJSON {
	w := &summaryJSON{
		Now: now, tally: s.all,
		ByProject: s.groups[dimProject], ByUser: s.groups[dimUser],
		ByReservation: s.groups[dimReservation], ByLocation: s.groups[dimLocation],
		AuditLoss: s.loss,
	}
	if s.oldest != nil {
		w.OldestRunning = jobOf(s.oldest, preview)
	}
	if s.queued != nil {
		w.LongestQueued = jobOf(s.queued, preview)
	}
	return w
}
