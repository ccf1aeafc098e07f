package history

import (
	"time"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/schema"
)

// Where a job's final state came from, in final_state_source.
const (
	SourceAuditLog       = "audit_log"
	SourceAPI            = "api"
	SourceReconciliation = "reconciliation"
)

// onDemand are the reservations that mean the job was billed on demand:
// none known, "unreserved", as BigQuery's audit log names on-demand
// capacity, or "none", the reservation a job asks for to run on demand.
var onDemand = map[string]bool{"": true, "unreserved": true, "none": true}

// scriptStatement is the statement type of a script's parent job, whose
// bytes billed are the sum of its children's (and whose reservation the
// audit log names "unreserved" whatever its children ran in).
const scriptStatement = "SCRIPT"

// tib is a tebibyte, the unit of on-demand prices.
const tib = 1 << 40

// versioner makes the versions of jobs: the fold of a job's events, and
// the columns the history derives from it.
type versioner struct {
	rows   *rowType
	prices schema.Prices
	now    func() time.Time
}

func newVersioner(cfg Config) (*versioner, error) {
	rows, err := newRowType(schema.JobVersions())
	if err != nil {
		return nil, err
	}
	if cfg.Prices.USDPerTiB == nil {
		cfg.Prices = schema.OnDemandPrices()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &versioner{rows: rows, prices: cfg.Prices, now: cfg.Now}, nil
}

// version returns the current version of the job key from its events. It
// applies the plausibility rule (events.Event.DropImplausible) to them
// first, in place: the appender applies it to every event it appends, so
// this drops only what a writer without the rule left in the log.
func (s *versioner) version(key events.JobKey, evs []events.Event) (events.Job, Derived) {
	for i := range evs {
		evs[i].DropImplausible()
	}
	j := events.Fold(key, evs)
	return j, s.derive(&j, evs)
}

// derive computes the columns a version of j adds to its fields, j being
// the fold of evs.
func (s *versioner) derive(j *events.Job, evs []events.Event) Derived {
	d := Derived{
		EventCount:       countEvents(evs),
		QueuedMs:         millisBetween(j.CreateTime, j.StartTime),
		RunMs:            millisBetween(j.StartTime, j.EndTime),
		EstimatedCostUSD: s.estimatedCost(j),
		VersionTime:      s.now().UTC(),
	}
	if j.Done() {
		d.FinalStateSource = finalStateSource(evs)
	}
	return d
}

// countEvents counts the distinct events of evs.
func countEvents(evs []events.Event) int64 {
	seen := make(map[string]struct{}, len(evs))
	for i := range evs {
		seen[evs[i].ID] = struct{}{}
	}
	return int64(len(seen))
}

// millisBetween is the time from a to b in milliseconds, when both are
// known and b is not before a.
func millisBetween(a, b time.Time) *int64 {
	if a.IsZero() || b.IsZero() || b.Before(a) {
		return nil
	}
	ms := b.Sub(a).Milliseconds()
	return &ms
}

// estimatedCost is what j's bytes billed cost on demand in its location,
// when j was billed on demand, its bytes billed are known and the price
// table has its location.
func (s *versioner) estimatedCost(j *events.Job) *float64 {
	if j.BytesBilled == nil || !onDemand[j.Reservation] || j.StatementType == scriptStatement {
		return nil // a script's children are priced, each on its own
	}
	price, ok := s.prices.PerTiB(j.Key.Location)
	if !ok {
		return nil
	}
	usd := float64(*j.BytesBilled) / tib * price
	return &usd
}

// finalStateSource names where a finished job's end came from: the best of
// its DONE events, a completion entry of the audit log before BigQuery's
// jobs API, before a reconciliation (enrichment closing a job whose
// completion never came), before any other source.
func finalStateSource(evs []events.Event) string {
	best, rank := "", 0
	for i := range evs {
		e := &evs[i]
		if e.State != events.StateDone {
			continue
		}
		src, r := e.Source.Format, 1
		switch {
		case e.Kind == events.KindReconciled:
			src, r = SourceReconciliation, 2
		case e.Source.Format == "v1" || e.Source.Format == "v2":
			src, r = SourceAuditLog, 4
		case e.Source.Format == "api":
			src, r = SourceAPI, 3
		}
		if r > rank || r == rank && src < best {
			best, rank = src, r
		}
	}
	return best
}
