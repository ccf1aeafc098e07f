package running

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/bqobserver/bqobserver/projections/access"
)

// The history (GET /api/v1/history) is the finished jobs of a time range,
// read from the event log on each request, so that the product shows its
// history without BigQuery. It is served here, by the running list's own
// machinery (filters, search, order, cursor, page encoder), over a store of
// its own that holds the range's jobs for the length of one request: the
// history then cannot drift from the list in what a filter, a search, a
// sort or a cursor means, and whatever narrows what a caller may see of the
// list (a filter added to listQuery, or to store.list) narrows the history
// in the same place. Moving that machinery into a package of its own would
// have moved the list's tuned hot path for no change in behaviour.

// HistoryConfig configures the history. The zero value of every field means
// its default.
type HistoryConfig struct {
	// MaxRange is the longest time range one request may read. Default 24h.
	MaxRange time.Duration
	// MaxJobs bounds how many finished jobs one request may fold: a range
	// holding more is refused (400) before its jobs are read. Default
	// 50,000, about 150 MB of folded jobs at worst.
	MaxJobs int
	// Lateness is how long after its end a job's DONE event may be timed
	// and the job still be found in the range it ended in: a job is found
	// through that event, which an audit entry times at (or just after) the
	// end and reconciliation at the moment it noticed. Default 15m.
	Lateness time.Duration
	// Timeout bounds one request's reads of the log; when it passes the
	// request answers 503 with Retry-After. Default 10s.
	Timeout time.Duration
	// Concurrency is how many requests may read the log at once; the others
	// wait, within their Timeout. Default 2.
	Concurrency int
	// BigQueryProject and BigQueryDataset name where the history table and
	// its views are, so that a page can link to them. An empty project
	// gives no link. The dataset's default is "bqobserver".
	BigQueryProject string
	BigQueryDataset string
}

func (c *HistoryConfig) setDefaults() {
	if c.MaxRange == 0 {
		c.MaxRange = 24 * time.Hour
	}
	if c.MaxJobs == 0 {
		c.MaxJobs = 50_000
	}
	if c.Lateness == 0 {
		c.Lateness = 15 * time.Minute
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Concurrency == 0 {
		c.Concurrency = 2
	}
	if c.BigQueryDataset == "" {
		c.BigQueryDataset = "bqobserver"
	}
}

func (c *HistoryConfig) validate() []error {
	var errs []error
	for name, d := range map[string]time.Duration{"history max range": c.MaxRange, "history lateness": c.Lateness, "history timeout": c.Timeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, not %s", name, d))
		}
	}
	if c.MaxJobs < 1 {
		errs = append(errs, fmt.Errorf("history max jobs must be at least 1, not %d", c.MaxJobs))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("history concurrency must be at least 1, not %d", c.Concurrency))
	}
	return errs
}

// defaultSpan is how far back a history request that names no start reads.
const defaultSpan = time.Hour

// span is a time range, [from, to).
type span struct{ from, to time.Time }

func (s *span) contains(t time.Time) bool { return !t.Before(s.from) && t.Before(s.to) }

// historyParams are the history's parameters beyond the list's.
var historyParams = []string{"from", "to"}

// historyQuery is one history request: a page of the list of the finished
// jobs of a range, the range's ends zero until resolved when not given.
type historyQuery struct {
	list     listQuery
	from, to time.Time
}

func checkHistory(v url.Values) []paramError {
	_, bad := parseHistoryQuery(v)
	return bad
}

// parseHistoryQuery reads a history request, reporting every bad parameter
// that does not depend on the clock or the configuration. A cursor carries
// its page's range: from and to may then be left out, and must agree with
// it when given.
func parseHistoryQuery(v url.Values) (historyQuery, []paramError) {
	q, invalid := parseListQuery(v, historyKind)
	bad := problems(invalid)
	h := historyQuery{list: q, from: parseTime(v, "from", bad.add), to: parseTime(v, "to", bad.add)}
	if sp := q.span; sp != nil {
		if !h.from.IsZero() && !h.from.Equal(sp.from) || !h.to.IsZero() && !h.to.Equal(sp.to) {
			bad.add("cursor", "was made for the range from %s to %s", stamp(sp.from), stamp(sp.to))
		}
		h.from, h.to = sp.from, sp.to
	}
	if !h.from.IsZero() && !h.to.IsZero() && !h.from.Before(h.to) {
		bad.add("to", "must be after from")
	}
	return h, bad
}

// parseTime reads an RFC 3339 time parameter; zero when it is not given.
func parseTime(v url.Values, name string, fail func(name, format string, args ...any)) time.Time {
	s, _ := single(v, name, fail)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		fail(name, "%q is not an RFC 3339 time such as 2025-03-03T08:00:00Z", s)
		return time.Time{}
	}
	return t.UTC()
}

// resolve fills in the ends of the range not given, to now and an hour
// before to, and checks its length.
func (h *historyQuery) resolve(now time.Time, maxRange time.Duration) []paramError {
	var bad problems
	if h.to.IsZero() {
		h.to = now.UTC()
	}
	if h.from.IsZero() {
		h.from = h.to.Add(-defaultSpan)
	}
	switch {
	case !h.from.Before(h.to):
		bad.add("from", "must be before to (%s)", stamp(h.to))
	case h.to.Sub(h.from) > maxRange:
		bad.add("from", "the range from %s to %s is longer than one request may read, %s", stamp(h.from), stamp(h.to), maxRange)
	}
	h.list.span = &span{from: h.from, to: h.to}
	return bad
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// serveHistory answers a page of the finished jobs of a range. It reads
// the log within the configured timeout and answers 503 with Retry-After
// when the log is unavailable, too slow or busy with other history reads.
func (p *Projection) serveHistory(w http.ResponseWriter, r *http.Request) {
	q, bad := parseHistoryQuery(r.URL.Query())
	if len(bad) == 0 {
		bad = q.resolve(p.cfg.Now(), p.cfg.History.MaxRange)
	}
	if len(bad) > 0 {
		badRequest(w, r, bad)
		return
	}
	q.list.filter.scope = access.ScopeFrom(r.Context())
	ctx, cancel := context.WithTimeout(r.Context(), p.cfg.History.Timeout)
	defer cancel()
	st, err := p.readHistory(ctx, *q.list.span, q.list.filter.scope)
	if err != nil {
		p.historyFailure(ctx, w, r, err)
		return
	}
	bq := p.cfg.History.bigQuery(&q)
	writePage(w, st, &q.list, p.cfg.Now(), p.cfg.QueryPreview, func(b []byte) []byte {
		b = appendString(append(b, `,"from":`...), stamp(q.from))
		b = appendString(append(b, `,"to":`...), stamp(q.to))
		b = appendString(append(b, `,"bigquery_project":`...), bq.project)
		b = appendString(append(b, `,"bigquery_dataset":`...), bq.dataset)
		b = appendString(append(b, `,"bigquery_console_url":`...), bq.consoleURL)
		return appendString(append(b, `,"bigquery_sql":`...), bq.sql)
	})
}

// historyFailure answers a history request whose read of the log failed.
func (p *Projection) historyFailure(ctx context.Context, w http.ResponseWriter, r *http.Request, err error) {
	var many *tooManyJobs
	switch {
	case errors.As(err, &many):
		badRequest(w, r, []paramError{{Name: "from", Reason: many.Error()}})
	case errors.Is(err, errHistoryBusy):
		unavailable(w, r, p.cfg.RetryAfter, err.Error())
	case ctx.Err() != nil && r.Context().Err() == nil:
		unavailable(w, r, p.cfg.RetryAfter, fmt.Sprintf("reading the history: the event log did not answer within %s", p.cfg.History.Timeout))
	default:
		p.logFailure(w, r, "reading the history", err)
	}
}
