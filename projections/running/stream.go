package running

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/projections/access"
)

// Stream event names. added, changed and removed are relative to the
// stream's filters: a job that starts matching them is added, one that stops
// matching them (or finishes) is removed.
const (
	evAdded     = "added"
	evChanged   = "changed"
	evRemoved   = "removed"
	evSnapshot  = "snapshot"
	evSynced    = "synced"
	evReset     = "reset"
	evHeartbeat = "heartbeat"
)

// resetReason is what a reset event says.
const resetReason = "changes since the last event id are no longer kept; reload the list"

// Stream pacing.
const (
	streamBatch = 256         // changes read from the ring at a time
	crossEvery  = time.Second // how often min_running streams look for jobs crossing the bound
	retryMs     = 1000        // the reconnection delay a stream suggests to EventSource
)

// stream is one client's Server-Sent Events stream of the list's changes.
type stream struct {
	p      *Projection
	w      http.ResponseWriter
	rc     *http.ResponseController
	f      filter
	cursor uint64    // seq of the last change considered
	mark   time.Time // the moment min_running is judged at
	buf    []byte
}

// serveStream follows the list's changes for the filters of the request.
// Every event carries an id; a client reconnecting with Last-Event-ID gets
// every change it missed, or a reset event when they are no longer kept
// (then it should reload the list). With snapshot=true a stream that does not
// resume starts with every matching job as snapshot events, then synced.
func (p *Projection) serveStream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var bad problems
	f := parseFilter(q, runningKind, &bad)
	snapshot := parseSnapshot(q, &bad)
	if len(bad) > 0 {
		badRequest(w, r, bad)
		return
	}
	f.scope = access.ScopeFrom(r.Context())
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream")
		return // a stream has no end to wait for
	}
	s := &stream{p: p, w: w, rc: http.NewResponseController(w), f: f, mark: p.cfg.Now()}
	notify, head := p.changes.subscribe()
	defer p.changes.unsubscribe(notify)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s.raw("retry: " + strconv.Itoa(retryMs) + "\n\n")
	if err := s.start(r.Header.Get("Last-Event-ID"), head, snapshot); err != nil {
		return
	}
	if err := s.drain(math.MaxUint64); err != nil {
		return
	}
	ctx := r.Context()
	if exp := f.scope.Principal().Expires; !exp.IsZero() {
		// The caller's credential ends the stream: its client comes
		// back with a fresh one, or not at all.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, exp)
		defer cancel()
	}
	s.follow(ctx, notify)
}

func checkStream(v url.Values) []paramError {
	var bad problems
	parseFilter(v, runningKind, &bad)
	parseSnapshot(v, &bad)
	return bad
}

func parseSnapshot(q url.Values, bad *problems) bool {
	v, ok := single(q, "snapshot", bad.add)
	if !ok || v == "" {
		return ok
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		bad.add("snapshot", "must be true or false")
	}
	return b
}

// start positions the stream: where the client left off if that is still
// known, else at the newest change, after a reset event if the client had
// been following, or after a snapshot if it asked for one. A min_running
// stream cannot resume: which jobs crossed the bound while it was away is
// not kept, so it resets.
func (s *stream) start(lastID string, head uint64, snapshot bool) error {
	if lastID != "" && s.f.minRunning == 0 {
		if seq, ok := s.p.changes.parseID(lastID); ok {
			if _, kept := s.p.changes.since(seq, 0); kept {
				s.cursor = seq
				return s.flush()
			}
		}
	}
	if snapshot {
		return s.snapshot()
	}
	s.cursor = head
	if lastID != "" {
		s.event(evReset, s.p.changes.id(head), []byte(`{"reason":"`+resetReason+`"}`))
	}
	return s.flush()
}

func (s *stream) snapshot() error {
	jobs, seq := s.p.store.snapshot(&s.f, s.mark, s.p.cfg.QueryPreview)
	sortJobs(jobs)
	s.cursor = seq
	id := s.p.changes.id(seq)
	for _, j := range jobs {
		data, err := json.Marshal(j)
		if err != nil {
			return err
		}
		// No id until synced: a client that loses the connection in the
		// middle of the snapshot must be sent all of it again, not resume
		// after the jobs it never had.
		s.event(evSnapshot, "", data)
		if err := s.spill(); err != nil {
			return err
		}
	}
	s.event(evSynced, id, []byte(`{"total":`+strconv.Itoa(len(jobs))+`}`))
	return s.flush()
}

// follow sends changes as they come, heartbeats when idle, and, for a
// min_running filter, the jobs that cross the bound as time passes, until
// the client leaves, falls too far behind or the projection closes.
func (s *stream) follow(ctx context.Context, notify <-chan struct{}) {
	heartbeat := time.NewTicker(s.p.cfg.StreamHeartbeat)
	defer heartbeat.Stop()
	var cross <-chan time.Time
	if s.f.minRunning > 0 {
		t := time.NewTicker(crossEvery)
		defer t.Stop()
		cross = t.C
	}
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-s.p.closing:
			return
		case <-notify:
			err = s.drain(math.MaxUint64)
		case <-heartbeat.C:
			s.event(evHeartbeat, s.p.changes.id(s.cursor), []byte(`{"now":"`+s.p.cfg.Now().UTC().Format(time.RFC3339Nano)+`"}`))
			err = s.flush()
		case <-cross:
			err = s.cross()
		}
		if err != nil {
			return
		}
	}
}

// errLapped cuts a stream that fell further behind than the ring keeps.
var errLapped = errors.New("stream fell behind the changes kept")

// drain sends the changes after the cursor, up to seq upTo.
func (s *stream) drain(upTo uint64) error {
	for s.cursor < upTo {
		cs, ok := s.p.changes.since(s.cursor, streamBatch)
		if !ok {
			return errLapped
		}
		if len(cs) == 0 {
			break
		}
		m := s.f.resolve(&s.p.store.dicts, s.mark)
		for _, c := range cs {
			if c.seq > upTo {
				break
			}
			s.send(c, &m)
			s.cursor = c.seq
			if err := s.spill(); err != nil {
				return err
			}
		}
		if err := s.flush(); err != nil {
			return err
		}
	}
	return nil
}

// send writes what a change means to this stream's view, if anything.
func (s *stream) send(c *change, m *matcher) {
	was := c.had && m.match(&c.before)
	is := c.has && m.match(&c.after)
	id := s.p.changes.id(c.seq)
	a := &c.after
	if !c.has {
		a = &c.before
	}
	hidden := m.hidden(a, &c.view.job)
	switch {
	case is && !was:
		s.event(evAdded, id, c.jobData(s.p.cfg.QueryPreview, hidden))
	case is && was:
		s.event(evChanged, id, c.jobData(s.p.cfg.QueryPreview, hidden))
	case was:
		s.event(evRemoved, id, c.removedData(s.p.cfg.QueryPreview, hidden))
	}
}

// cross moves the moment min_running is judged at to now: it sends the
// changes made before the jobs crossing the bound were looked up, judged at
// the old moment, then those jobs as added.
func (s *stream) cross() error {
	now := s.p.cfg.Now()
	jobs, seq := s.p.store.crossings(&s.f, s.mark, now, s.p.cfg.QueryPreview)
	if err := s.drain(seq); err != nil {
		return err
	}
	s.mark = now
	id := s.p.changes.id(seq)
	for _, j := range jobs {
		data, err := json.Marshal(j)
		if err != nil {
			return err
		}
		s.event(evAdded, id, data)
		if err := s.spill(); err != nil {
			return err
		}
	}
	return s.flush()
}

// event appends one event to the stream's buffer.
func (s *stream) event(name, id string, data []byte) {
	if id != "" { // none: the client keeps the last id it had
		s.buf = append(s.buf, "id: "...)
		s.buf = append(s.buf, id...)
		s.buf = append(s.buf, '\n')
	}
	s.buf = append(s.buf, "event: "...)
	s.buf = append(s.buf, name...)
	s.buf = append(s.buf, "\ndata: "...)
	s.buf = append(s.buf, data...)
	s.buf = append(s.buf, "\n\n"...)
}

func (s *stream) raw(text string) { s.buf = append(s.buf, text...) }

// spillBytes is how much a stream buffers before it writes: a stream whose
// client does not read holds at most about this much, besides what the
// connection buffers, until its write times out.
const spillBytes = 16 << 10

// spill flushes the buffer once it is large, so that a long run of events
// is sent in pieces.
func (s *stream) spill() error {
	if len(s.buf) < spillBytes {
		return nil
	}
	return s.flush()
}

// flush writes the buffer within the write timeout and flushes it to the
// client.
func (s *stream) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	err := s.rc.SetWriteDeadline(time.Now().Add(s.p.cfg.StreamWriteTimeout))
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := s.w.Write(s.buf); err != nil {
		return err
	}
	s.buf = s.buf[:0]
	return s.rc.Flush()
}

// sortJobs orders jobs by project/location/job_id.
func sortJobs(js []*jobJSON) {
	slices.SortFunc(js, func(a, b *jobJSON) int {
		ka := events.JobKey{Project: a.Key.Project, Location: a.Key.Location, JobID: a.Key.JobID}
		kb := events.JobKey{Project: b.Key.Project, Location: b.Key.Location, JobID: b.Key.JobID}
		return compareIDs(&ka, &kb)
	})
}
