// Package jobsapi is the BigQuery jobs API as enrichment uses it: every
// pending and running job of a project in one listing (all users, full
// projection, every page), one job by jobs.get, and a probe for the doctor.
//
// It uses the discovery-based client google.golang.org/api/bigquery/v2,
// whose jobs.list takes several states at once (the JobIterator of
// cloud.google.com/go/bigquery takes one), and adds what that client
// leaves to its caller:
//
//   - a rate limit shared by every call of the process (Config.QPS): each
//     attempt waits for a token, so a burst of work queues instead of
//     spending the project's quota;
//   - retries of rate limits (429, or 403 with reason rateLimitExceeded or
//     quotaExceeded) and backend failures (5xx, timeouts) with jittered
//     exponential backoff from gax-go, the Google client libraries' retry,
//     up to Config.Attempts attempts;
//   - errors by kind: ErrNotFound, ErrRateLimited, ErrUnavailable, and
//     *DeniedError naming the permission and the role that grants it. A 403
//     is a denial only when no reason of its says rate limit.
//
// A Client is safe for concurrent use.
package jobsapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/googleapis/gax-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/api/option"

	"github.com/bqobserver/bqobserver/events"
)

// Config configures a Client. The zero value of every field means its
// default.
type Config struct {
	// Endpoint overrides the API's base URL, for example the simulated
	// organization's http://127.0.0.1:8080/simulation/bigquery/v2/. Empty
	// means Google's.
	Endpoint string
	// QPS is the most calls per second the process makes, all projects
	// and methods together, retries included (default 20).
	QPS float64
	// PageSize is jobs.list's maxResults (default 1000).
	PageSize int
	// Attempts bounds the attempts of one call (default 5).
	Attempts int
	// Backoff is the first pause before a retry (default 1s); each pause
	// is drawn at random below a bound that doubles up to MaxBackoff
	// (default 16s).
	Backoff, MaxBackoff time.Duration
	// CallTimeout bounds one attempt (default 30s).
	CallTimeout time.Duration
}

// Defaults of Config.
const (
	DefaultQPS      = 20
	DefaultPageSize = 1000
)

func (c *Config) setDefaults() {
	if c.QPS == 0 {
		c.QPS = DefaultQPS
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.Attempts == 0 {
		c.Attempts = 5
	}
	if c.Backoff == 0 {
		c.Backoff = time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 16 * time.Second
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 30 * time.Second
	}
}

// Validate reports every setting out of range, after defaults.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if !(c.QPS > 0 && c.QPS <= 10000) {
		errs = append(errs, fmt.Errorf("QPS must be above 0 and at most 10000, not %g", c.QPS))
	}
	if c.PageSize < 1 || c.PageSize > 1000 {
		errs = append(errs, fmt.Errorf("page size must be from 1 to 1000, not %d", c.PageSize))
	}
	if c.Attempts < 1 {
		errs = append(errs, fmt.Errorf("attempts must be at least 1, not %d", c.Attempts))
	}
	if c.Backoff <= 0 || c.MaxBackoff < c.Backoff {
		errs = append(errs, fmt.Errorf("backoff %s must be positive and at most the max backoff %s", c.Backoff, c.MaxBackoff))
	}
	if c.CallTimeout <= 0 {
		errs = append(errs, fmt.Errorf("call timeout must be positive, not %s", c.CallTimeout))
	}
	return errors.Join(errs...)
}

// Client calls the jobs API.
type Client struct {
	svc     *bq.Service
	cfg     Config
	limiter *rate.Limiter
	metrics *metrics
}

// New returns a client. opts are the client options of the API client
// (credentials, HTTP client); Config.Endpoint, when set, is added to them.
// Its metrics are registered on reg (nil: not registered).
func New(ctx context.Context, cfg Config, reg prometheus.Registerer, opts ...option.ClientOption) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuring the BigQuery jobs API client: %w", err)
	}
	cfg.setDefaults()
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.Endpoint))
	}
	svc, err := bq.NewService(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to the BigQuery jobs API: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	burst := max(1, int(math.Ceil(cfg.QPS)))
	return &Client{svc: svc, cfg: cfg, limiter: rate.NewLimiter(rate.Limit(cfg.QPS), burst), metrics: m}, nil
}

// States is the stateFilter of ListOpen: the jobs that are not DONE.
var States = []string{"pending", "running"}

// listFields is the partial response ListOpen asks for: what enrichment
// reads of the full projection, without the stages' details and steps,
// the dry-run and DML statistics and the rest, so that BigQuery sends and
// the client decodes less (https://cloud.google.com/bigquery/docs/api-performance#partial-response).
// A test holds every name to the API's types.
const listFields = "nextPageToken,jobs(jobReference,state,user_email,status(state,errorResult)," +
	"configuration(jobType,labels,query(query,priority,destinationTable),load(sourceUris,destinationTable)," +
	"extract(destinationUris,sourceTable),copy(sourceTables,destinationTable))," +
	"statistics(creationTime,startTime,endTime,totalSlotMs,totalBytesProcessed,reservation_id,parentJobId," +
	"query(statementType,totalBytesBilled,billingTier,cacheHit,referencedTables,queryPlan(id),timeline)))"

// ListOpen returns every pending and running job of project, every user's,
// created at or after since (zero: any time), in the full projection: one
// call per page. It fails if any page fails; pages are not retried as a
// whole, each page's call is.
func (c *Client) ListOpen(ctx context.Context, project string, since time.Time) ([]*bq.JobListJobs, error) {
	var out []*bq.JobListJobs
	token := ""
	for {
		page, err := c.listPage(ctx, project, since, token, c.cfg.PageSize)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Jobs...)
		if token = page.NextPageToken; token == "" {
			return out, nil
		}
	}
}

// Probe lists at most one open job of project: the cheapest call that
// needs bigquery.jobs.listAll, for the doctor.
func (c *Client) Probe(ctx context.Context, project string) ([]*bq.JobListJobs, error) {
	page, err := c.listPage(ctx, project, time.Time{}, "", 1)
	if err != nil {
		return nil, err
	}
	return page.Jobs, nil
}

func (c *Client) listPage(ctx context.Context, project string, since time.Time, token string, size int) (*bq.JobList, error) {
	var page *bq.JobList
	cl := &call{method: MethodList, project: project, permission: PermissionListAll}
	err := c.do(ctx, cl, func(ctx context.Context) (err error) {
		req := c.svc.Jobs.List(project).AllUsers(true).StateFilter(States...).Projection("full").
			MaxResults(int64(size)).Fields(listFields).Context(ctx)
		if !since.IsZero() {
			req = req.MinCreationTime(uint64(max(0, since.UnixMilli())))
		}
		if token != "" {
			req = req.PageToken(token)
		}
		page, err = req.Do()
		return err
	})
	return page, err
}

// Get returns one job as jobs.get does, with its query plan and timeline.
func (c *Client) Get(ctx context.Context, key events.JobKey) (*bq.Job, error) {
	var job *bq.Job
	cl := &call{method: MethodGet, project: key.Project, permission: PermissionGet, job: key.JobID}
	err := c.do(ctx, cl, func(ctx context.Context) (err error) {
		job, err = c.svc.Jobs.Get(key.Project, key.JobID).Location(key.Location).Context(ctx).Do()
		return err
	})
	return job, err
}

// TryWait is the longest a TryGet waits for the rate limit.
const TryWait = 250 * time.Millisecond

// TryGet is Get for a caller who is waiting on it (a job's live detail):
// each attempt waits for the rate limit at most TryWait, and when no token
// comes within that the call fails at once with ErrRateLimited. Such
// calls may come in bursts (every browser that opens a job), and a wait
// for a token reserves it: were they to queue, they would hold the
// tokens of the next seconds ahead of the polls, whose windows are short.
func (c *Client) TryGet(ctx context.Context, key events.JobKey) (*bq.Job, error) {
	var job *bq.Job
	cl := &call{method: MethodGet, project: key.Project, permission: PermissionGet, job: key.JobID, maxWait: TryWait}
	err := c.do(ctx, cl, func(ctx context.Context) (err error) {
		job, err = c.svc.Jobs.Get(key.Project, key.JobID).Location(key.Location).Context(ctx).Do()
		return err
	})
	return job, err
}

// Methods, as metrics and errors name them.
const (
	MethodList   = "jobs.list"
	MethodGet    = "jobs.get"
	MethodCancel = "jobs.cancel"
)

// call describes a call for its errors.
type call struct {
	method, project, permission, job string
	// unlimited calls do not wait for the rate limit.
	unlimited bool
	// maxWait, if not zero, is the longest the call waits for the rate
	// limit; then it fails with errNoToken.
	maxWait time.Duration
}

// errNoToken is why a call with a maxWait gave up waiting for the rate
// limit.
var errNoToken = errors.New("no token of the rate limit")

func (c *call) String() string {
	if c.job != "" {
		return c.method + " " + c.project + "/" + c.job
	}
	return c.method + " " + c.project
}

// do runs attempt until it succeeds, fails for good, or has been tried
// Config.Attempts times; every attempt waits for the rate limit first.
func (c *Client) do(ctx context.Context, cl *call, attempt func(context.Context) error) error {
	var last error
	r := &retryer{limit: c.cfg.Attempts, bo: gax.Backoff{Initial: c.cfg.Backoff, Max: c.cfg.MaxBackoff, Multiplier: 2}}
	err := gax.Invoke(ctx, func(ctx context.Context, _ gax.CallSettings) error {
		if err := c.wait(ctx, cl); err != nil {
			last, r.kind = waitFailure(err), kindFatal
			return last
		}
		actx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		defer cancel()
		start := time.Now()
		last = attempt(actx)
		r.kind = kindOf(actx, last)
		c.metrics.observe(cl.method, r.kind, time.Since(start))
		return last
	}, gax.WithRetry(func() gax.Retryer { return r }))
	if err == nil {
		return nil
	}
	if last == nil || ctx.Err() != nil {
		last = err
	}
	return failure(ctx, cl, last)
}

// wait waits for the rate limit's token, unless cl is unlimited, at most
// cl.maxWait if set. A token that would come later is not reserved
// (rate.Limiter.Wait reserves nothing it cannot get by its deadline).
func (c *Client) wait(ctx context.Context, cl *call) error {
	switch {
	case cl.unlimited:
		return nil
	case cl.maxWait > 0:
		wctx, cancel := context.WithTimeout(ctx, cl.maxWait)
		defer cancel()
		err := c.limiter.Wait(wctx)
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("%w within %s", errNoToken, cl.maxWait)
		}
		return err
	}
	return c.limiter.Wait(ctx)
}

// waitFailure is the error of an attempt that got no token: the context
// ended (err is its error), it would before a token comes (a deadline, in
// effect), or a call with a maxWait gave up (rate limited).
func waitFailure(err error) error {
	switch {
	case errors.Is(err, errNoToken):
		return fmt.Errorf("waiting for the rate limit: %w: %w", ErrRateLimited, err)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("waiting for the rate limit: %w", err)
	}
	return fmt.Errorf("waiting for the rate limit: %w: %w", context.DeadlineExceeded, err)
}

// kindOf classifies an attempt's outcome.
func kindOf(ctx context.Context, err error) kind {
	if err == nil {
		return kindOK
	}
	return classify(ctx, err)
}

// retryer retries rate limits and unavailability, with jittered
// exponential backoff, until limit attempts were made.
type retryer struct {
	limit, made int
	kind        kind
	bo          gax.Backoff
}

func (r *retryer) Retry(error) (time.Duration, bool) {
	r.made++
	if r.made >= r.limit || (r.kind != kindRateLimited && r.kind != kindUnavailable) {
		return 0, false
	}
	return r.bo.Pause(), true
}
