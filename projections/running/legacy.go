package running

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/projections/access"
)

// legacyJob is a running job in the shape of the 2019 original's
// /_ah/get-handlers/v1/jobs, which existing dashboards read: lower-case
// names, title-case type and state, zero values for what is not known, and
// src/dst as comma-separated lists. Unlike the original, string values are
// plain JSON strings, not strings wrapped in extra quotes. A stale job's
// state is "Unknown" (the original's word for a state it could not tell),
// so that no dashboard shows it as running; stale says why.
type legacyJob struct {
	CreateTime     time.Time `json:"createtime"`
	StartTime      time.Time `json:"starttime"`
	ProjectID      string    `json:"projectid"`
	JobID          string    `json:"jobid"`
	Location       string    `json:"location"`
	ActiveUnits    int64     `json:"activeunits"`
	CompletedUnits int64     `json:"completedunits"`
	PendingUnits   int64     `json:"pendingunits"`
	Type           string    `json:"type"`
	State          string    `json:"state"`
	Error          string    `json:"error"`
	Email          string    `json:"email"`
	Src            string    `json:"src"`
	Dst            string    `json:"dst"`
	Priority       string    `json:"priority"`
	StatementType  string    `json:"statementtype"`
	SlotMillis     int64     `json:"slotmillis"`
	Updated        time.Time `json:"updated"`
	Stale          bool      `json:"stale"`
}

type legacyJSON struct {
	Data []legacyJob `json:"data"`
}

// serveLegacy lists every running job, ordered by project, location and job
// id. Query parameters are ignored, as the original did (its dashboards send
// get_param=value).
func (p *Projection) serveLegacy(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, &legacyJSON{Data: p.store.legacy(&filter{scope: access.ScopeFrom(r.Context())}, p.cfg.Now())})
}

// legacy lists every job f matches (f's scope: every job its caller may
// see); the original's shape carries no query text.
func (s *store) legacy(f *filter, now time.Time) []legacyJob {
	s.mu.RLock()
	m := f.resolve(&s.dicts, now)
	out := make([]legacyJob, 0, len(s.slots))
	for i := range s.slots {
		if m.match(&s.slots[i].a) {
			out = append(out, legacyOf(&s.slots[i].e.job, s.slots[i].a.stale))
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b legacyJob) int {
		return compareIDs(&events.JobKey{Project: a.ProjectID, Location: a.Location, JobID: a.JobID},
			&events.JobKey{Project: b.ProjectID, Location: b.Location, JobID: b.JobID})
	})
	return out
}

func legacyOf(j *events.Job, stale bool) legacyJob {
	l := legacyJob{
		CreateTime: j.CreateTime.UTC(), StartTime: j.StartTime.UTC(),
		ProjectID: j.Key.Project, JobID: j.Key.JobID, Location: j.Key.Location,
		ActiveUnits: deref(j.ActiveUnits), CompletedUnits: deref(j.CompletedUnits), PendingUnits: deref(j.PendingUnits),
		Type: titleCase(j.JobType), State: titleCase(string(j.State)), Email: j.Principal,
		Src: legacySources(j), Dst: legacyDestination(j), Priority: j.Priority, StatementType: j.StatementType,
		SlotMillis: deref(j.SlotMs), Updated: j.LastSeen.UTC(), Stale: stale,
	}
	if l.State == "" || stale {
		l.State = "Unknown"
	}
	if j.Error != nil {
		l.Error = strings.TrimPrefix(j.Error.Code+": "+j.Error.Message, ": ")
	}
	return l
}

func legacySources(j *events.Job) string {
	for _, s := range [][]string{j.ReferencedTables, j.SourceTables, j.SourceURIs} {
		if len(s) > 0 {
			return strings.Join(s, ",")
		}
	}
	return ""
}

func legacyDestination(j *events.Job) string {
	if j.DestinationTable != "" {
		return j.DestinationTable
	}
	return strings.Join(j.DestinationURIs, ",")
}

// titleCase turns "QUERY" into "Query", as the original named types and
// states.
func titleCase(s string) string {
	if s == "" {
		return ""
	}
	return s[:1] + strings.ToLower(s[1:])
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
