// Package enrich asks the BigQuery jobs API about the jobs the event log
// says are open, and appends what it learns to the log as events, through
// the one appender, so that the running list, the history and every
// replica see it. Audit logs say when a job starts and ends, nothing in
// between, and some completions never arrive; enrichment fills both gaps.
//
// Every Interval (5s), for each project with open jobs that this replica
// holds the lease of (package lease), one poll:
//
//   - Progress. One jobs.list (every user, pending and running, full
//     projection, minCreationTime from the project's oldest open job, every
//     page) gives each running job's slot-ms, bytes processed, work units,
//     reservation and start. A job whose numbers differ from what the log
//     already holds for it gets a progress event; an unchanged job gets
//     nothing. The event's identity derives from the job, the moment of the
//     observation and the numbers, so appending it again is harmless.
//   - Reconciliation. An open job the listing lacks (a script's statement
//     excepted while its script is listed) is given one more cycle for its
//     completion entry to arrive if the previous listing had it: it ended
//     since. If it is still open then, one jobs.get decides: DONE gives a
//     reconciled event carrying the API's final state, statistics and
//     error, so the job leaves the list within two cycles of its end; a 404
//     (job expired, project deleted) NotFoundLimit times in a row gives a
//     reconciled event with the reason "not found"; PENDING or RUNNING
//     gives a progress event. A job created since the previous listing
//     ended since too, and gets the same cycle. A job older than the
//     previous listing that it lacked (the log learned of it after it
//     ended) is asked about at once, and closed once it ended an interval
//     ago (its completion entry had that long to arrive), so that it too
//     leaves within two cycles of its end.
//   - Discovery. A job the listing has, that the log does not know (neither
//     listed nor recently finished) and that is older than a cycle, is
//     appended from the API's answer: an inserted event at its creation
//     time, as its audit entry would have said, then its progress.
//
// Reconciliation and discovery need to tell a lost entry from one on its
// way: a poll appends progress only while the job source is catching up
// (its completions and insertions may be queued), and at the first
// listing of a project (after a start or a takeover: the entries of the
// moments before may be queued still), which gives the jobs it lacks a
// cycle.
//
// Every SweepInterval (5m) the projects that had jobs in the last 30 days
// (package registry) and have none open are listed too, so that a project
// whose audit entries never arrive is found.
//
// Reconciled and discovered jobs are counted by project: they measure how
// much the audit sink loses. A 403 is recorded with the permission it
// lacks and the role that grants it (Diagnostics); the other projects go
// on. Calls share one rate limit and retry rate limits and backend errors
// with jittered backoff (package jobsapi); a job's live detail waits for
// the rate limit only briefly, so that opened jobs never hold the polls'
// calls back. Workers projects are polled at once, taken from one queue
// in order (open jobs first, then the sweep, least recently polled
// first), and a project whose poll is still running at the next tick is
// skipped, so a slow project never stalls the others.
//
// Delivery semantics. Enrichment acknowledges nothing: what it fails to
// append (the appender returned an error) is observed again at the next
// cycle, since the job is still open or still unknown; an appended event
// that reaches the log twice, from a retry or from two replicas in a
// takeover, rewrites the same cells or folds away. A replica that dies
// loses only what it remembers between cycles (which jobs were already
// missing from a listing, how many 404s a job had), which delays
// reconciliation by a cycle or three.
package enrich

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bq "google.golang.org/api/bigquery/v2"

	"github.com/bqobserver/bqobserver/enrich/registry"
	"github.com/bqobserver/bqobserver/events"
)

// Config configures an Enricher. The zero value of every field means its
// default.
type Config struct {
	// Interval is the time between two polls of a project (default 5s).
	Interval time.Duration
	// SweepInterval is the time between two sweeps of the projects active
	// in the last ActiveWindow that have no open job (default 5m).
	SweepInterval time.Duration
	// ActiveWindow is how far back a project's jobs make the sweep list it
	// (default 30 days).
	ActiveWindow time.Duration
	// Workers is how many projects are polled at once (default 16).
	Workers int
	// NotFoundLimit is how many 404s in a row close a job (default 3).
	NotFoundLimit int
	// LiveTTL is how long a job's live detail is reused (default 5s).
	LiveTTL time.Duration
	// RegistryTimeout bounds each call to the registry (default 5s): a
	// Bigtable that does not answer fails the sweep's reads and writes,
	// which the next sweep tries again, rather than holding every poll.
	RegistryTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) setDefaults() {
	dur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	dur(&c.Interval, 5*time.Second)
	dur(&c.SweepInterval, 5*time.Minute)
	dur(&c.ActiveWindow, 30*24*time.Hour)
	dur(&c.LiveTTL, 5*time.Second)
	dur(&c.RegistryTimeout, 5*time.Second)
	if c.Workers == 0 {
		c.Workers = 16
	}
	if c.NotFoundLimit == 0 {
		c.NotFoundLimit = 3
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every setting out of range, after defaults.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	for _, d := range []struct {
		name     string
		v, least time.Duration
	}{
		{"interval", c.Interval, 10 * time.Millisecond}, {"sweep interval", c.SweepInterval, c.Interval},
		{"active window", c.ActiveWindow, time.Hour}, {"live TTL", c.LiveTTL, 0}, {"registry timeout", c.RegistryTimeout, 0},
	} {
		if d.v < d.least || d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive and at least %s, not %s", d.name, d.least, d.v))
		}
	}
	if c.Workers < 1 || c.Workers > 1000 {
		errs = append(errs, fmt.Errorf("workers must be from 1 to 1000, not %d", c.Workers))
	}
	if c.NotFoundLimit < 1 {
		errs = append(errs, fmt.Errorf("not-found limit must be at least 1, not %d", c.NotFoundLimit))
	}
	return errors.Join(errs...)
}

// The collaborators of an Enricher, as it uses them.

// jobsAPI is the BigQuery jobs API (a *jobsapi.Client).
type jobsAPI interface {
	ListOpen(ctx context.Context, project string, since time.Time) ([]*bq.JobListJobs, error)
	Get(ctx context.Context, key events.JobKey) (*bq.Job, error)
	// TryGet is Get that waits for the shared rate limit only briefly,
	// and otherwise fails as rate limited: a job's live detail uses it,
	// so that detail requests never hold tokens ahead of the polls.
	TryGet(ctx context.Context, key events.JobKey) (*bq.Job, error)
}

// jobSource is what the log says is open (a *running.Projection).
type jobSource interface {
	// Ready reports whether the source knows what is open: until then
	// nothing is polled, lest known jobs be taken for lost ones.
	Ready() bool
	// CatchingUp reports whether the source is behind the audit log by
	// more than a moment: completions and insertions it has not applied
	// yet may be queued, so polls append progress only meanwhile, lest
	// they reconcile jobs whose completion is on its way and discover
	// jobs whose insertion is.
	CatchingUp() bool
	// OpenJobs returns a copy of every open job of the projects keep
	// accepts, by project.
	OpenJobs(keep func(project string) bool) map[string][]events.Job
	// Listed reports whether the job is open.
	Listed(key events.JobKey) bool
	// Known reports whether the job is open or finished recently.
	Known(key events.JobKey) bool
	// RecentProjects returns the projects with an open or recently
	// finished job.
	RecentProjects() []string
}

// appender appends events to the log and publishes them (a *bus.Appender).
type appender interface {
	Append(ctx context.Context, evs []events.Event) error
}

// owner says which projects this replica polls (a *lease.Leases).
type owner interface {
	// Until returns until when this replica may poll project, and whether
	// it may now.
	Until(project string) (time.Time, bool)
}

// projectRegistry is what replicas share about projects (a
// *registry.Registry).
type projectRegistry interface {
	Touch(ctx context.Context, projects []string, t time.Time) error
	Active(ctx context.Context, since time.Time) ([]string, error)
	Deny(ctx context.Context, d registry.Denial) error
	Allow(ctx context.Context, project, method string) error
	Denials(ctx context.Context) ([]registry.Denial, error)
}

// boundedRegistry gives each call to reg at most timeout
// (Config.RegistryTimeout).
type boundedRegistry struct {
	reg     projectRegistry
	timeout time.Duration
}

func (b boundedRegistry) within(ctx context.Context, call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return call(ctx)
}

func (b boundedRegistry) Touch(ctx context.Context, projects []string, t time.Time) error {
	return b.within(ctx, func(ctx context.Context) error { return b.reg.Touch(ctx, projects, t) })
}

func (b boundedRegistry) Active(ctx context.Context, since time.Time) (out []string, err error) {
	err = b.within(ctx, func(ctx context.Context) (err error) { out, err = b.reg.Active(ctx, since); return err })
	return out, err
}

func (b boundedRegistry) Deny(ctx context.Context, d registry.Denial) error {
	return b.within(ctx, func(ctx context.Context) error { return b.reg.Deny(ctx, d) })
}

func (b boundedRegistry) Allow(ctx context.Context, project, method string) error {
	return b.within(ctx, func(ctx context.Context) error { return b.reg.Allow(ctx, project, method) })
}

func (b boundedRegistry) Denials(ctx context.Context) (out []registry.Denial, err error) {
	err = b.within(ctx, func(ctx context.Context) (err error) { out, err = b.reg.Denials(ctx); return err })
	return out, err
}

// Deps are an Enricher's collaborators.
type Deps struct {
	API      jobsAPI
	Jobs     jobSource
	Appender appender
	// Leases, if not nil, decide which projects this replica polls;
	// without them it polls every project.
	Leases owner
	// Registry, if not nil, shares projects' activity and denials among
	// replicas; without it there is no sweep and diagnostics are this
	// replica's own.
	Registry   projectRegistry
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Enricher polls the jobs API and appends what it learns. Run it once;
// Cycle is for tests and benchmarks that drive time themselves.
type Enricher struct {
	cfg  Config
	deps Deps
	m    *metrics
	diag *diagnostics
	live *liveCache

	queue *queue

	mu        sync.Mutex
	polled    map[string]time.Time                  // when each project's last poll started
	missing   map[string]map[events.JobKey]*absence // open jobs a listing lacked, by project
	seen      map[string]listing                    // each project's last listing
	failing   map[failedCall]bool                   // methods in projects whose failure was logged
	cut       map[string]bool                       // projects whose cut-off poll was logged
	acted     map[events.JobKey]time.Time           // jobs reconciled or discovered lately
	lastSweep time.Time
}

// New returns an Enricher. API, Jobs, Appender and Registerer are needed.
func New(cfg Config, d Deps) (*Enricher, error) {
	errs := []error{cfg.Validate()}
	if d.API == nil || d.Jobs == nil || d.Appender == nil || d.Registerer == nil {
		errs = append(errs, errors.New("the jobs API, the job source, the appender and the metrics registerer are all needed"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuring enrichment: %w", err)
	}
	cfg.setDefaults()
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registry != nil {
		d.Registry = boundedRegistry{reg: d.Registry, timeout: cfg.RegistryTimeout}
	}
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	e := &Enricher{cfg: cfg, deps: d, m: m, queue: newQueue(),
		polled: map[string]time.Time{}, missing: map[string]map[events.JobKey]*absence{},
		seen: map[string]listing{}, failing: map[failedCall]bool{}, cut: map[string]bool{},
		acted: map[events.JobKey]time.Time{}}
	e.diag = newDiagnostics(d.Registry, cfg.Now)
	e.live = newLiveCache(d.API, cfg.LiveTTL, cfg.Now, d.Logger)
	return e, nil
}
