package simulation

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Formats of audit entries, as Config.Formats names them.
const (
	FormatV1 = "v1" // legacy AuditData, protoPayload.serviceData
	FormatV2 = "v2" // BigQueryAuditMetadata, protoPayload.metadata
)

// Config configures a simulated organization. Zero fields take the
// defaults documented on each; Validate reports what is out of range.
type Config struct {
	// Seed selects the organization and its activity. The same Seed and
	// Config give the same organization and, in virtual time, the same
	// entries byte for byte.
	Seed uint64
	// Projects is the number of projects (default 50).
	Projects int
	// Rate is the mean number of jobs submitted per second of simulated
	// time across the organization (default 1). Script child jobs come on
	// top; each job yields about two entries per format.
	Rate float64
	// Formats are the audit formats written for every job (default both,
	// as a sink whose filter admits both delivers them).
	Formats []string
	// Start is the simulated time at which the simulation begins. Zero
	// means 2025-03-03T08:00:00Z for Generate, so that output is
	// reproducible, and the wall clock for Run.
	Start time.Time
	// Speed is how much faster than the wall clock simulated time runs in
	// Run (default 1).
	Speed float64
	// Delivery sets the delivery imperfections. Nil means
	// DefaultDelivery(); a zero Delivery delivers every entry once,
	// promptly, in the order Cloud Logging received them.
	Delivery *Delivery
	// Retention is how long after its end a job stays visible to the jobs
	// API, which answers 404 for it afterwards (default 24h). BigQuery
	// keeps a job six months after its creation; a job runs six hours at
	// most, so counting from the end differs little there, and with a short
	// retention (to bound the simulation's memory, about 4 KB a job) a job
	// that ran longer than the retention can still be read once it ended:
	// enrichment finds the end of a job whose completion entry was lost by
	// reading it then.
	Retention time.Duration
	// StatisticsInterval is how often the jobs API refreshes a running
	// job's statistics, query plan and timeline, counted from its start
	// (default 30s, as BigQuery documents for long-running queries).
	StatisticsInterval time.Duration
	// DurationScale multiplies every job's run time (default 1). A larger
	// scale keeps more jobs running at once for the same rate, and so
	// reaches a large running population with fewer jobs simulated;
	// reservations grow with it to keep their queues as they are.
	DurationScale float64
	// Faults are the errors the jobs API injects from the start; JobsAPI
	// changes them at run time.
	Faults Faults
	// Operator is the identity of whoever calls the jobs API: jobs.list
	// without allUsers lists its jobs, and jobs.cancel is logged as its
	// call (default bqobserver@bqobserver-local.iam.gserviceaccount.com).
	Operator string
}

// Delivery is how imperfectly the sink delivers entries, as Pub/Sub and
// Cloud Logging do: at least once, in no guaranteed order, late, and in
// rare cases not at all.
type Delivery struct {
	// Jitter spreads the usual delivery latency, one second after Cloud
	// Logging received the entry, by up to this much more, so that entries
	// written close together may arrive out of order.
	Jitter time.Duration
	// DuplicateShare is the share of entries delivered a second time,
	// seconds to minutes after the first.
	DuplicateShare float64
	// ReorderShare is the share of short jobs (at most two minutes) whose
	// first entries arrive after their completion.
	ReorderShare float64
	// DelayShare is the share of entries delivered late: 5 s to MaxDelay
	// after the usual latency.
	DelayShare float64
	// MaxDelay bounds the extra delay of a late entry.
	MaxDelay time.Duration
	// LostCompletionShare is the share of jobs whose completion entries
	// (in every format) never arrive, so that only the jobs API can tell
	// that they finished.
	LostCompletionShare float64
}

// DefaultDelivery returns the imperfections a simulation has unless
// configured otherwise.
func DefaultDelivery() Delivery {
	return Delivery{
		Jitter:              time.Second,
		DuplicateShare:      0.02,
		ReorderShare:        0.01,
		DelayShare:          0.05,
		MaxDelay:            2 * time.Minute,
		LostCompletionShare: 0.005,
	}
}

// Defaults of Config.
const (
	DefaultProjects  = 50
	DefaultRate      = 1.0
	DefaultSpeed     = 1.0
	DefaultRetention = 24 * time.Hour
	// DefaultStatisticsInterval follows the query plan documentation:
	// statistics of long-running queries are updated "typically [not]
	// more frequently than every 30 seconds"
	// (https://cloud.google.com/bigquery/docs/query-plan-explanation).
	DefaultStatisticsInterval = 30 * time.Second
	DefaultDurationScale      = 1.0
	DefaultOperator           = "bqobserver@bqobserver-local.iam.gserviceaccount.com"
)

// defaultStart is where virtual time begins when Config.Start is zero: a
// Monday morning.
var defaultStart = time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Projects == 0 {
		c.Projects = DefaultProjects
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if len(c.Formats) == 0 {
		c.Formats = []string{FormatV1, FormatV2}
	}
	if c.Speed == 0 {
		c.Speed = DefaultSpeed
	}
	if c.Delivery == nil {
		d := DefaultDelivery()
		c.Delivery = &d
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.Operator == "" {
		c.Operator = DefaultOperator
	}
	if c.StatisticsInterval == 0 {
		c.StatisticsInterval = DefaultStatisticsInterval
	}
	if c.DurationScale == 0 {
		c.DurationScale = DefaultDurationScale
	}
	return c
}

// Limits of Config, so that a typo cannot ask for an unbounded simulation.
const (
	maxProjects      = 10000
	maxRate          = 100000
	maxDurationScale = 100
)

// Validate reports every setting that is out of range, after defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Projects < 1 || c.Projects > maxProjects {
		errs = append(errs, fmt.Errorf("projects must be between 1 and %d, not %d", maxProjects, c.Projects))
	}
	if !(c.Rate > 0 && c.Rate <= maxRate) {
		errs = append(errs, fmt.Errorf("rate must be above 0 and at most %d jobs/s, not %g", maxRate, c.Rate))
	}
	errs = append(errs, validateFormats(c.Formats)...)
	if !(c.Speed > 0) {
		errs = append(errs, fmt.Errorf("speed must be above 0, not %g", c.Speed))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("retention must not be negative, not %s", c.Retention))
	}
	if c.StatisticsInterval < 0 {
		errs = append(errs, fmt.Errorf("statistics interval must not be negative, not %s", c.StatisticsInterval))
	}
	if !(c.DurationScale > 0 && c.DurationScale <= maxDurationScale) {
		errs = append(errs, fmt.Errorf("duration scale must be above 0 and at most %d, not %g", maxDurationScale, c.DurationScale))
	}
	errs = append(errs, c.Faults.validate()...)
	errs = append(errs, c.Delivery.validate()...)
	return errors.Join(errs...)
}

func validateFormats(formats []string) []error {
	var errs []error
	for i, f := range formats {
		switch {
		case f != FormatV1 && f != FormatV2:
			errs = append(errs, fmt.Errorf("format %q is neither %s nor %s", f, FormatV1, FormatV2))
		case slices.Contains(formats[:i], f):
			errs = append(errs, fmt.Errorf("format %s is listed twice", f))
		}
	}
	return errs
}

func (d *Delivery) validate() []error {
	var errs []error
	for _, s := range []struct {
		name string
		v    float64
	}{
		{"duplicate share", d.DuplicateShare}, {"reorder share", d.ReorderShare},
		{"delay share", d.DelayShare}, {"lost completion share", d.LostCompletionShare},
	} {
		if !(s.v >= 0 && s.v <= 1) {
			errs = append(errs, fmt.Errorf("%s must be between 0 and 1, not %g", s.name, s.v))
		}
	}
	if d.MaxDelay < 0 || (d.DelayShare > 0 && d.MaxDelay <= 5*time.Second) {
		errs = append(errs, fmt.Errorf("max delay must be above 5s when some entries are delayed, not %s", d.MaxDelay))
	}
	if d.Jitter < 0 {
		errs = append(errs, fmt.Errorf("jitter must not be negative, not %s", d.Jitter))
	}
	return errs
}
