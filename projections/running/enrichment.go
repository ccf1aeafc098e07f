package running

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/projections/access"
)

// Enrichment is what the API shows of enrichment (an *enrich.Enricher): a
// job's live detail from the BigQuery jobs API, and the projects the
// service cannot see into.
type Enrichment interface {
	// Live returns the job as the jobs API reports it now.
	Live(ctx context.Context, key events.JobKey) (*Live, error)
	// Diagnostics returns what keeps enrichment from seeing into projects.
	Diagnostics(ctx context.Context) (*Diagnostics, error)
}

// AttachEnrichment makes the job detail carry live stages and
// /api/v1/diagnostics report enrichment's problems. Without it the detail
// has the log's view only and diagnostics say enrichment is off.
func (p *Projection) AttachEnrichment(e Enrichment) { p.enrichment.Store(&e) }

func (p *Projection) enricher() Enrichment {
	if e := p.enrichment.Load(); e != nil {
		return *e
	}
	return nil
}

// Live is a job as the jobs API reported it when someone opened it: its
// state, its query plan's stages and its timeline.
type Live struct {
	ObservedAt time.Time        `json:"observed_at"`
	State      string           `json:"state"`
	Stages     []Stage          `json:"stages"`
	Timeline   []TimelineSample `json:"timeline"`
}

// Stage is one stage of a query's plan, as far as it got. A count BigQuery
// gives that cannot be true (events.ImplausibleCount) is left out (nil),
// and so is such a time (events.ImplausibleTime): the plausibility rule.
type Stage struct {
	ID                      int64     `json:"id"`
	Name                    string    `json:"name"`
	Status                  string    `json:"status"`
	InputStages             []int64   `json:"input_stages,omitempty"`
	ParallelInputs          *int64    `json:"parallel_inputs,omitempty"`
	CompletedParallelInputs *int64    `json:"completed_parallel_inputs,omitempty"`
	RecordsRead             *int64    `json:"records_read,omitempty"`
	RecordsWritten          *int64    `json:"records_written,omitempty"`
	SlotMs                  *int64    `json:"slot_ms,omitempty"`
	StartTime               time.Time `json:"start_time,omitzero"`
	EndTime                 time.Time `json:"end_time,omitzero"`
	// The ratios of the stage's workers' time in each activity to the
	// longest any worker of the query spent in it, on average and at most.
	WaitRatioAvg    float64 `json:"wait_ratio_avg"`
	WaitRatioMax    float64 `json:"wait_ratio_max"`
	ReadRatioAvg    float64 `json:"read_ratio_avg"`
	ReadRatioMax    float64 `json:"read_ratio_max"`
	ComputeRatioAvg float64 `json:"compute_ratio_avg"`
	ComputeRatioMax float64 `json:"compute_ratio_max"`
	WriteRatioAvg   float64 `json:"write_ratio_avg"`
	WriteRatioMax   float64 `json:"write_ratio_max"`
}

// TimelineSample is the query's progress at one moment of its run. A
// sample with a number that cannot be true is left out of the timeline: a
// point of a series cannot be drawn without its numbers.
type TimelineSample struct {
	ElapsedMs      int64 `json:"elapsed_ms"`
	SlotMs         int64 `json:"slot_ms"`
	CompletedUnits int64 `json:"completed_units"`
	ActiveUnits    int64 `json:"active_units"`
	PendingUnits   int64 `json:"pending_units"`
}

// Diagnostics is what keeps enrichment from seeing into projects.
type Diagnostics struct {
	// Enrichment says whether enrichment runs at all.
	Enrichment bool      `json:"enrichment"`
	CheckedAt  time.Time `json:"checked_at"`
	Problems   []Problem `json:"problems"`
}

// Problem is a permission a project denies the service.
type Problem struct {
	Project    string `json:"project"`
	Method     string `json:"method"`
	Permission string `json:"permission"`
	// Role grants the permission; Fix says where to grant it.
	Role    string `json:"role"`
	Fix     string `json:"fix"`
	Message string `json:"message"`
	// Since is when the denial was first seen, Checked when last.
	Since   time.Time `json:"since"`
	Checked time.Time `json:"checked"`
}

// serveDiagnostics answers enrichment's problems to a caller who sees
// every job; to others, who would learn of projects they may not see,
// none.
func (p *Projection) serveDiagnostics(w http.ResponseWriter, r *http.Request) {
	e := p.enricher()
	if e == nil || !seesAll(access.ScopeFrom(r.Context())) {
		writeJSON(w, r, &Diagnostics{Enrichment: e != nil, CheckedAt: p.cfg.Now().UTC(), Problems: []Problem{}})
		return
	}
	d, err := e.Diagnostics(r.Context())
	if err != nil {
		p.logFailure(w, r, "reading enrichment's diagnostics", err)
		return
	}
	writeJSON(w, r, d)
}

// seesAll reports whether sc's caller sees every job.
func seesAll(sc access.Scope) bool {
	_, own := sc.Owner()
	return !own && !sc.SeesNothing()
}

// liveTimeout bounds the jobs API call a job's detail waits for: past it
// the detail comes without its live part.
const liveTimeout = 3 * time.Second

// liveDetail returns the job's live detail, or why there is none; both empty
// without enrichment.
func (p *Projection) liveDetail(ctx context.Context, key events.JobKey) (*Live, string) {
	e := p.enricher()
	if e == nil {
		return nil, ""
	}
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	l, err := e.Live(ctx, key)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return nil, "the BigQuery jobs API did not answer within " + liveTimeout.String()
	case err != nil:
		return nil, err.Error()
	}
	return l, ""
}

// OpenJobs returns a copy of every listed job of the projects keep
// accepts, by project: what enrichment polls. keep is called once per
// project, under the list's read lock.
func (p *Projection) OpenJobs(keep func(project string) bool) map[string][]events.Job {
	return p.store.openJobs(keep)
}

// Listed reports whether the job is in the list.
func (p *Projection) Listed(key events.JobKey) bool {
	p.store.mu.RLock()
	defer p.store.mu.RUnlock()
	return p.store.jobs[key] != nil
}

// Known reports whether the job is in the list or finished within the
// tombstone memory (TombstoneTTL).
func (p *Projection) Known(key events.JobKey) bool {
	p.store.mu.RLock()
	defer p.store.mu.RUnlock()
	return p.store.jobs[key] != nil || p.store.tombs.has(key)
}

// RecentProjects returns the projects that have a listed job or one that
// finished within the tombstone memory, in no order.
func (p *Projection) RecentProjects() []string {
	s := p.store
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := map[string]bool{}
	var out []string
	add := func(k events.JobKey) {
		if !seen[k.Project] {
			seen[k.Project] = true
			out = append(out, k.Project)
		}
	}
	for k := range s.jobs {
		add(k)
	}
	s.tombs.eachProject(func(project string) { add(events.JobKey{Project: project}) })
	return out
}

func (s *store) openJobs(keep func(string) bool) map[string][]events.Job {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string][]events.Job{}
	decided := map[string]bool{}
	for i := range s.slots {
		j := &s.slots[i].e.job
		ok, seen := decided[j.Key.Project]
		if !seen {
			ok = keep(j.Key.Project)
			decided[j.Key.Project] = ok
		}
		if ok {
			out[j.Key.Project] = append(out[j.Key.Project], *j)
		}
	}
	return out
}
