package running

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/cancel"
	"github.com/bqobserver/bqobserver/projections/access"
)

// Bounds of a cancel request.
const (
	// maxCancelBody bounds the body of a cancel request: a reason of
	// cancel.MaxReason bytes, escaped, fits.
	maxCancelBody = 8 << 10
	// cancelTimeout bounds the time BigQuery and the log get to answer it.
	cancelTimeout = 30 * time.Second
)

// canceller carries out a cancel request: it asks BigQuery and records the
// request (*cancel.Canceller is one).
type canceller interface {
	Cancel(ctx context.Context, r cancel.Request) (events.Event, error)
}

// The API carries out cancel requests with the canceller.
var _ canceller = (*cancel.Canceller)(nil)

// AttachCanceller lets admins cancel jobs through the API (POST
// /api/v1/jobs/{project}/{location}/{job_id}:cancel); without one that
// endpoint answers 501. Call it before serving.
func (p *Projection) AttachCanceller(c canceller) { p.canceller = c }

// cancelBody is the optional body of a cancel request.
type cancelBody struct {
	Reason string `json:"reason"`
}

// cancelJSON answers an accepted cancel request: the job and the event that
// records the request.
type cancelJSON struct {
	Key   events.JobKey `json:"key"`
	Event eventJSON     `json:"event"`
}

// serveCancel asks BigQuery to cancel a job, for admins only: 202 once
// BigQuery accepted (the job stops shortly after and leaves the list), 403
// for other callers, 404 for a job neither listed nor in the log, 409 for a
// finished one, 502 when BigQuery refuses, 503 when it cannot answer now.
func (p *Projection) serveCancel(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(r.PathValue("job_action"), ":cancel")
	if !ok {
		writeProblem(w, r, http.StatusNotFound, "no such endpoint; to cancel a job, POST to …/{job_id}:cancel", nil)
		return
	}
	caller := access.ScopeFrom(r.Context()).Principal()
	if !access.CanCancel(caller) {
		writeProblem(w, r, http.StatusForbidden, "only admins may cancel jobs; "+caller.Email+" is "+caller.Role.String(), nil)
		return
	}
	body, err := readCancelBody(w, r)
	if err != nil {
		writeProblem(w, r, statusOfBody(err), err.Error(), nil)
		return
	}
	key := events.JobKey{Project: r.PathValue("project"), Location: r.PathValue("location"), JobID: id}
	if err := key.Validate(); err != nil {
		writeProblem(w, r, http.StatusBadRequest, err.Error(), nil)
		return
	}
	if !p.cancellable(w, r, key) {
		return
	}
	ctx, stop := context.WithTimeout(r.Context(), cancelTimeout)
	defer stop()
	ev, err := p.canceller.Cancel(ctx, cancel.Request{Job: key, By: caller.Email, Reason: body.Reason})
	if err != nil {
		p.cancelFailed(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/jobs/"+key.Project+"/"+key.Location+"/"+key.JobID)
	writeJSONStatus(w, r, http.StatusAccepted, &cancelJSON{Key: key, Event: eventJSON{Event: ev}})
}

// cancellable answers, and reports false, unless the job exists, is not
// finished and the API may cancel jobs. Its read of the log is bounded by
// RequestTimeout: a job whose state cannot be read is not cancelled.
func (p *Projection) cancellable(w http.ResponseWriter, r *http.Request, key events.JobKey) bool {
	ctx, stop := context.WithTimeout(r.Context(), p.cfg.RequestTimeout)
	defer stop()
	r = r.WithContext(ctx)
	v, _, found, err := p.find(ctx, key)
	switch {
	case err != nil:
		p.logFailure(w, r, "reading the job's events", err)
	case !found:
		notFound(w, r, key)
	case v.job.Done():
		writeProblem(w, r, http.StatusConflict, "job "+key.String()+" is finished (DONE): there is nothing to cancel", nil)
	case p.canceller == nil:
		writeProblem(w, r, http.StatusNotImplemented, "this service cannot call BigQuery's jobs.cancel", nil)
	default:
		return true
	}
	return false
}

// errBodyTooLarge and errBadBody are the failures of reading a cancel
// request's body.
var (
	errBodyTooLarge = errors.New("the body is larger than a cancel request needs")
	errBadBody      = errors.New(`the body must be empty or a JSON object {"reason": "…"}`)
)

// readCancelBody reads the optional JSON body of a cancel request.
func readCancelBody(w http.ResponseWriter, r *http.Request) (cancelBody, error) {
	var b cancelBody
	d := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCancelBody))
	d.DisallowUnknownFields()
	err := d.Decode(&b)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return cancelBody{}, nil
	case errors.As(err, &tooLarge):
		return b, errBodyTooLarge
	case err != nil || d.More():
		return b, errBadBody
	case len(b.Reason) > cancel.MaxReason:
		return b, errors.New("the reason is longer than 1024 bytes")
	}
	return b, nil
}

func statusOfBody(err error) int {
	if errors.Is(err, errBodyTooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// cancelFailed answers a cancel request that was not carried out.
func (p *Projection) cancelFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, cancel.ErrInvalid):
		writeProblem(w, r, http.StatusBadRequest, err.Error(), nil)
	case errors.Is(err, cancel.ErrRefused):
		writeProblem(w, r, http.StatusBadGateway, err.Error(), nil)
	case errors.Is(err, events.ErrUnavailable):
		unavailable(w, r, p.cfg.RetryAfter, err.Error())
	default:
		p.logger.ErrorContext(r.Context(), "cancelling a job", "error", err.Error(), "path", r.URL.Path)
		writeProblem(w, r, http.StatusInternalServerError, "cancelling the job failed", nil)
	}
}

// meJSON is the caller as the API sees it.
type meJSON struct {
	access.Principal
	CanCancel bool `json:"can_cancel"`
}

// serveMe answers who the caller is, its role, and whether it may cancel
// jobs: what the UI needs to offer what the caller may do.
func (p *Projection) serveMe(w http.ResponseWriter, r *http.Request) {
	caller := access.ScopeFrom(r.Context()).Principal()
	writeJSON(w, r, &meJSON{Principal: caller, CanCancel: access.CanCancel(caller)})
}
