// Package running is the running-jobs projection: an in-memory list of every
// BigQuery job of the organization whose last known state is not DONE,
// rebuilt at start from the event log with the shared fold (events.Job) and
// then fed live from the events topic. It serves that list as a JSON API
// (list with filters, search, sort and cursor pagination; one job with its
// event timeline; aggregates; a Server-Sent Events stream of changes; the
// original 2019 endpoint for existing dashboards), documented by an embedded
// OpenAPI document.
//
// Delivery semantics: events may arrive in any order and any number of times,
// from the rebuild and from the live feed at once; each is folded into its
// job with events.Job.Apply, which is commutative and idempotent, so
// duplicates and reordering leave the same list. A job leaves the list when
// its fold is DONE and is remembered for a while (a tombstone) so that a late
// duplicate cannot bring it back; an event of an unknown job older than that
// memory, or with no state (a request to cancel, dated when it was made), is
// checked against the job's whole history in the log first. A job
// with no news for longer than any job can run is kept but flagged stale.
package running

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/events"
)

// Config configures a Projection. The zero value of every field means its
// default.
type Config struct {
	// StaleAfter is how long a job may go without any event (audit entry or
	// enrichment observation) before it is flagged stale. BigQuery stops a
	// query after 6 hours and other jobs sooner; continuous queries run for
	// days but keep producing progress observations while they run, so a
	// silence this long means the job's end was missed. Default 6h.
	StaleAfter time.Duration
	// SweepInterval is how often Run re-evaluates staleness. Default 1m.
	SweepInterval time.Duration
	// PruneInterval is how often Run removes the finished jobs the live
	// feed found in the log's open-jobs index. Default 1s.
	PruneInterval time.Duration
	// TombstoneTTL is how long a finished job is remembered so that late
	// duplicates of its events are ignored. An event of an unknown job older
	// than this is checked against the log before it may add the job.
	// Default 30m.
	TombstoneTTL time.Duration
	// RebuildBatch is how many jobs one log read fetches during a rebuild.
	// Default 1000, the event log's batched read.
	RebuildBatch int
	// RebuildWorkers is how many log reads a rebuild runs at once. Default 4.
	RebuildWorkers int
	// StreamReplay is how many recent changes are kept for streams: a client
	// resuming with Last-Event-ID within them misses nothing, and a client
	// that falls further behind is cut. Default 8192.
	StreamReplay int
	// StreamHeartbeat is the interval of heartbeat events on idle streams.
	// Default 15s.
	StreamHeartbeat time.Duration
	// StreamWriteTimeout bounds one write to a stream; a client that does not
	// read for this long is cut. Default 30s.
	StreamWriteTimeout time.Duration
	// RetryAfter is what 503 answers tell clients to wait. Default 5s.
	RetryAfter time.Duration
	// RequestTimeout bounds every request that reads the event log (a
	// job's detail): when it passes, the request is answered 503 with
	// Retry-After. Default 5s.
	RequestTimeout time.Duration
	// QueryPreview is how many bytes of query text the list and the stream
	// carry; the job's detail carries it all. Default 1024.
	QueryPreview int
	// Behind reports how far the list is behind the audit log at a moment:
	// the age, by Pub/Sub publish time, of the oldest entry or event that
	// has been published but not yet applied, as far as the process sees.
	// Nil: the list is never behind.
	Behind func(now time.Time) time.Duration
	// CatchingUpAfter is how far behind the list may fall before the
	// summary and /readyz say it is catching up. Default 10s.
	CatchingUpAfter time.Duration
	// ProbeTimeout bounds /readyz's probe of the event log. Default 2s.
	ProbeTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// History configures GET /api/v1/history, the finished jobs of a time
	// range read from the log.
	History HistoryConfig
	// Links are the places outside the product the page links to, served
	// at /api/v1/links.
	Links Links
	// Registerer, if set, receives the projection's metrics (see metrics).
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	dur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	num := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	dur(&c.StaleAfter, 6*time.Hour)
	dur(&c.SweepInterval, time.Minute)
	dur(&c.PruneInterval, time.Second)
	dur(&c.TombstoneTTL, 30*time.Minute)
	dur(&c.StreamHeartbeat, 15*time.Second)
	dur(&c.StreamWriteTimeout, 30*time.Second)
	dur(&c.RetryAfter, 5*time.Second)
	dur(&c.CatchingUpAfter, 10*time.Second)
	dur(&c.ProbeTimeout, 2*time.Second)
	dur(&c.RequestTimeout, 5*time.Second)
	num(&c.RebuildBatch, 1000)
	num(&c.RebuildWorkers, 4)
	num(&c.StreamReplay, 8192)
	num(&c.QueryPreview, 1024)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Behind == nil {
		c.Behind = func(time.Time) time.Duration { return 0 }
	}
	c.History.setDefaults()
}

// Validate reports every setting that is out of range.
func (c *Config) Validate() error {
	var errs []error
	positive := func(name string, v time.Duration) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, not %s", name, v))
		}
	}
	atLeast := func(name string, v, min int) {
		if v < min {
			errs = append(errs, fmt.Errorf("%s must be at least %d, not %d", name, min, v))
		}
	}
	positive("stale after", c.StaleAfter)
	positive("sweep interval", c.SweepInterval)
	positive("prune interval", c.PruneInterval)
	positive("tombstone TTL", c.TombstoneTTL)
	positive("stream heartbeat", c.StreamHeartbeat)
	positive("stream write timeout", c.StreamWriteTimeout)
	positive("catching up after", c.CatchingUpAfter)
	positive("probe timeout", c.ProbeTimeout)
	positive("request timeout", c.RequestTimeout)
	if c.RetryAfter < time.Second {
		errs = append(errs, fmt.Errorf("retry after must be at least 1s, not %s", c.RetryAfter))
	}
	atLeast("rebuild batch", c.RebuildBatch, 1)
	atLeast("rebuild workers", c.RebuildWorkers, 1)
	atLeast("stream replay", c.StreamReplay, 16)
	atLeast("query preview", c.QueryPreview, 64)
	errs = append(errs, c.History.validate()...)
	return errors.Join(errs...)
}

// Projection is the running-jobs list. It is safe for concurrent use: the
// live feed and the rebuild write while any number of requests read.
type Projection struct {
	cfg    Config
	log    eventLog
	logger *slog.Logger

	store   *store
	changes *ring
	pruner  *pruner
	// sweepAfter is when a sweep of the index may be tried again after
	// one failed (pruneTick's goroutine alone uses it).
	sweepAfter time.Time
	metrics    *metrics
	// history holds a place for each history request reading the log.
	history chan struct{}

	rebuilt atomic.Bool
	live    atomic.Bool
	// logHealth and pubsubHealth: whether the event log and Pub/Sub
	// answered their latest checks (ReportLog, ReportPubSub).
	logHealth, pubsubHealth backendCheck
	// detached: the subscriptions the service needs that the latest check
	// found attached to a deleted topic (ReportDetached).
	detached atomic.Pointer[[]string]

	canceller canceller // nil: the API cannot cancel jobs

	enrichment atomic.Pointer[Enrichment] // once attached

	closeOnce sync.Once
	closing   chan struct{}
}

// New returns an empty projection that answers 503 until Rebuild has run and
// MarkLive has been called. evlog is the event log it rebuilds from and reads
// job timelines from (an *events.Log).
func New(cfg Config, evlog eventLog, logger *slog.Logger) (*Projection, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuring the running-jobs projection: %w", err)
	}
	if evlog == nil {
		return nil, errors.New("configuring the running-jobs projection: no event log")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Projection{cfg: cfg, log: evlog, logger: logger, closing: make(chan struct{})}
	m, err := newMetrics(cfg.Registerer, func() int { return p.pruner.queued() })
	if err != nil {
		return nil, err
	}
	p.metrics = m
	p.logHealth.name, p.pubsubHealth.name = "the event log", "Pub/Sub"
	p.changes = newRing(cfg.StreamReplay)
	p.store = newLiveStore(cfg, p.changes)
	p.pruner = newPruner(evlog, logger, m)
	p.history = make(chan struct{}, cfg.History.Concurrency)
	return p, nil
}

// MarkLive records that the live feed is attached: the consumer of the
// events topic that feeds Handle runs (it calls MarkLive once Rebuild, its
// prepare step, succeeded). Together with a finished Rebuild it makes
// /readyz ready.
func (p *Projection) MarkLive() { p.live.Store(true) }

// Ready reports whether the projection has been rebuilt and is fed live.
func (p *Projection) Ready() bool { return p.rebuilt.Load() && p.live.Load() }

// Len returns how many jobs are in the list, stale ones included.
func (p *Projection) Len() int { return p.store.len() }

// Close ends every open stream. It is idempotent; the projection keeps
// answering other requests.
func (p *Projection) Close() {
	p.closeOnce.Do(func() { close(p.closing) })
}

// Apply folds events into the list, as the live feed does. It fails only when
// an event of an unknown job is older than the tombstone memory, or has no
// state, and the log, which must be asked whether that job already
// finished, cannot be read.
func (p *Projection) Apply(ctx context.Context, evs ...events.Event) error {
	for i := range evs {
		if err := p.apply(ctx, &evs[i]); err != nil {
			return err
		}
	}
	return nil
}
