package running

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/projections/access"
)

// Page sizes of the list.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

func checkList(v url.Values) []paramError {
	_, bad := parseListQuery(v, runningKind)
	return bad
}

// serveList answers a page request whose parameters guard has checked.
func (p *Projection) serveList(w http.ResponseWriter, r *http.Request) {
	q, bad := parseListQuery(r.URL.Query(), runningKind)
	if len(bad) > 0 {
		badRequest(w, r, bad)
		return
	}
	q.filter.scope = access.ScopeFrom(r.Context())
	writePage(w, p.store, &q, p.cfg.Now(), p.cfg.QueryPreview, nil)
}

// writePage answers one page of st's list: the page's jobs, the total
// matching, the next cursor and the server's clock, then the members extra
// appends (nil for none), each preceded by a comma.
func writePage(w http.ResponseWriter, st *store, q *listQuery, now time.Time, preview int, extra func([]byte) []byte) {
	buf := bufferPool.Get().(*[]byte)
	defer bufferPool.Put(buf)
	b := append((*buf)[:0], `{"jobs":`...)
	pg := st.list(q, now, preview, b)
	b = append(pg.jobs, `,"total":`...)
	b = strconv.AppendInt(b, int64(pg.total), 10)
	next := ""
	if pg.next != nil {
		next = pg.next.String()
	}
	b = appendString(append(b, `,"next_cursor":`...), next)
	b = append(append(b, `,"now":"`...), now.UTC().Format(time.RFC3339Nano)...)
	b = append(b, '"')
	if pg.stream != "" {
		b = appendString(append(b, `,"stream_id":`...), pg.stream)
	}
	if extra != nil {
		b = extra(b)
	}
	b = append(b, "}\n"...)
	*buf = b
	writeRaw(w, b)
}

// bufferPool holds response buffers, so that list requests allocate little.
var bufferPool = sync.Pool{New: func() any { return new([]byte) }}

// parseListQuery reads a page request of a list of kind k, reporting every
// bad parameter.
func parseListQuery(v url.Values, k *listKind) (listQuery, []paramError) {
	var bad problems
	q := listQuery{filter: parseFilter(v, k, &bad), order: k.order, limit: defaultLimit}
	fail := bad.add
	if s, ok := single(v, "sort", fail); ok && s != "" {
		o, err := parseOrder(s, k)
		if err != nil {
			fail("sort", "%v", err)
		}
		q.order = o
	}
	if s, ok := single(v, "limit", fail); ok && s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			fail("limit", "must be an integer from 1 to %d", maxLimit)
		}
		q.limit = n
	}
	if s, ok := single(v, "cursor", fail); ok && s != "" {
		c, err := parseCursor(s, q.order)
		switch {
		case err != nil:
			fail("cursor", "%v", err)
		case k.spanned && c.span == nil:
			fail("cursor", "was made for the running list, not the history")
		case !k.spanned && c.span != nil:
			fail("cursor", "was made for the history, not the running list")
		}
		q.after, q.span = &c, c.span
	}
	return q, bad
}

func (p *Projection) serveJob(w http.ResponseWriter, r *http.Request) {
	key := events.JobKey{Project: r.PathValue("project"), Location: r.PathValue("location"), JobID: r.PathValue("job_id")}
	if err := key.Validate(); err != nil {
		writeProblem(w, r, http.StatusBadRequest, err.Error(), nil)
		return
	}
	v, evs, found, err := p.find(r.Context(), key)
	if err != nil {
		p.logFailure(w, r, "reading the job's events", err)
		return
	}
	sc := access.ScopeFrom(r.Context())
	if !found {
		notFound(w, r, key)
		return
	}
	if !sc.Sees(v.job.Principal) {
		notFound(w, r, key) // not 403: whether the job exists is not the caller's to know
		return
	}
	v.hidden = sc.HideQuery(&v.job.Facts, v.job.Principal)
	sortEvents(evs)
	d := &detailJSON{Job: jobOf(&v, 0), Events: timelineOf(evs, sc, v.job.Principal)}
	d.Live, d.LiveError = p.liveDetail(r.Context(), key)
	writeJSON(w, r, d)
}

// notFound answers 404 for a job that is neither listed nor in the log, or
// that the caller may not see.
func notFound(w http.ResponseWriter, r *http.Request, key events.JobKey) {
	writeProblem(w, r, http.StatusNotFound, "no job "+key.String()+" in the running list or the event log", nil)
}

// timelineOf returns a job's events as the caller may see them: the query
// text left out of each that carries one the caller may not read.
func timelineOf(evs []events.Event, sc access.Scope, jobPrincipal string) []eventJSON {
	out := make([]eventJSON, len(evs))
	for i := range evs {
		out[i].Event = evs[i]
		out[i].QueryHidden = sc.HideQuery(&out[i].Facts, jobPrincipal)
	}
	return out
}

// find returns a job as its listed state and its history in the log make
// it, and its events; found is false when neither knows it.
func (p *Projection) find(ctx context.Context, key events.JobKey) (v view, evs []events.Event, found bool, err error) {
	evs, err = p.log.JobEvents(ctx, key)
	if err != nil {
		return view{}, nil, false, err
	}
	plausible(evs)
	listed, ok := p.store.get(key)
	if !ok && len(evs) == 0 {
		return view{}, nil, false, nil
	}
	return p.merge(listed, key, evs), evs, true, nil
}

// merge folds the job's history from the log into its listed state (empty
// when not listed): the log may hold events the live feed has not delivered
// yet, and a finished job is known only there.
func (p *Projection) merge(listed view, key events.JobKey, evs []events.Event) view {
	v := listed
	if v.job.Key == (events.JobKey{}) {
		v.job.Key = key
	}
	for i := range evs {
		v.job.Apply(&evs[i])
	}
	v.stale = !v.job.Done() && p.store.isStale(&v.job, p.cfg.Now())
	return v
}

func sortEvents(evs []events.Event) {
	slices.SortFunc(evs, func(a, b events.Event) int {
		return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.ID, b.ID))
	})
}

// logFailure answers a failed read of the log: 503 with Retry-After when it
// may succeed later (the log is unavailable, or did not answer within
// RequestTimeout), 500 otherwise.
func (p *Projection) logFailure(w http.ResponseWriter, r *http.Request, doing string, err error) {
	if errors.Is(r.Context().Err(), context.DeadlineExceeded) {
		unavailable(w, r, p.cfg.RetryAfter, fmt.Sprintf("%s: the event log did not answer within %s", doing, p.cfg.RequestTimeout))
		return
	}
	if errors.Is(err, events.ErrUnavailable) || r.Context().Err() != nil {
		unavailable(w, r, p.cfg.RetryAfter, doing+": the event log is unavailable")
		return
	}
	p.logger.ErrorContext(r.Context(), doing, "error", err.Error(), "path", r.URL.Path)
	writeProblem(w, r, http.StatusInternalServerError, doing+" failed", nil)
}

func (p *Projection) serveSummary(w http.ResponseWriter, r *http.Request) {
	now := p.cfg.Now()
	s := p.store.summarize(now, &filter{scope: access.ScopeFrom(r.Context())})
	sum := summaryOf(&s, now.UTC(), p.cfg.QueryPreview)
	sum.Lag = p.lag(now)
	writeJSON(w, r, sum)
}
