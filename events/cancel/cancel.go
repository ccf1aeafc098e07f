// Package cancel carries out the requests to cancel a job that the API
// accepts: it calls BigQuery's jobs.cancel with the service's own identity
// and records the request as a cancel-requested event, naming who asked,
// when, why and what BigQuery answered, through the one appender (so that it
// is in the event log, the job's timeline and the history like every other
// event), and in the service's structured log.
//
// Who may cancel is not decided here: the API checks the caller's role
// before it asks (see projections/access).
//
// Delivery semantics: every call of jobs.cancel that got an answer, an
// acceptance or a refusal, is recorded by one event whose id derives from
// the job, the caller and the moment of the request, so appending it again
// (a retried append) leaves one event. A request whose append fails after
// BigQuery answered is reported as transient: BigQuery may have stopped the
// job, and the structured log holds the answer; asking again calls
// jobs.cancel again (harmless: cancelling a job twice is allowed) and
// records a new event.
package cancel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bqobserver/bqobserver/events"
)

// Limits of what an event records.
const (
	// MaxReason bounds the reason a caller gives, in bytes.
	MaxReason = 1024
	// maxAnswer bounds BigQuery's answer as recorded.
	maxAnswer = 1024
	// recordTimeout bounds the append of a request's record, which does not
	// end when the caller leaves once BigQuery has answered.
	recordTimeout = 10 * time.Second
)

// The event's source: an operator's request, through jobs.cancel.
const (
	sourceFormat = "operator"
	sourceMethod = "jobs.cancel"
)

// ErrRefused is wrapped by the error of a request that BigQuery refused for
// good (the service may not cancel the job, BigQuery does not know it, the
// request is malformed): asking again does not help. The request is
// recorded all the same.
var ErrRefused = errors.New("BigQuery refused to cancel the job")

// ErrInvalid is wrapped by the error of a request the canceller refuses
// before calling BigQuery (an invalid key, a reason too long).
var ErrInvalid = errors.New("invalid cancel request")

// jobsAPI is BigQuery's jobs.cancel as the canceller calls it. Cancel asks
// BigQuery to cancel the job and returns the state BigQuery reports it in.
// An error matching events.ErrUnavailable is transient (BigQuery could not
// be reached, timed out or rate-limited every attempt); any other is its
// refusal.
type jobsAPI interface {
	Cancel(ctx context.Context, key events.JobKey) (events.State, error)
}

// appender appends events to the log and publishes them; *bus.Appender is
// one.
type appender interface {
	Append(ctx context.Context, evs []events.Event) error
}

// Canceller carries out cancel requests. It is safe for concurrent use.
type Canceller struct {
	api jobsAPI
	app appender
	log *slog.Logger
	now func() time.Time
}

// New returns a canceller that calls api, appends through app, and logs
// each request on log. now is the clock (nil: time.Now).
func New(api jobsAPI, app appender, log *slog.Logger, now func() time.Time) (*Canceller, error) {
	if api == nil || app == nil || log == nil {
		return nil, errors.New("configuring the canceller: the jobs API, the appender and the logger are all needed")
	}
	if now == nil {
		now = time.Now
	}
	return &Canceller{api: api, app: app, log: log, now: now}, nil
}

// Request is a request to cancel a job.
type Request struct {
	Job events.JobKey
	// By is who asks: the caller's email.
	By string
	// Reason is why, as the caller gave it (may be empty; at most
	// MaxReason bytes).
	Reason string
}

// Validate reports what makes r unfit to carry out.
func (r Request) Validate() error {
	var errs []error
	if err := r.Job.Validate(); err != nil {
		errs = append(errs, err)
	}
	if r.By == "" {
		errs = append(errs, errors.New("nobody asks"))
	}
	if len(r.Reason) > MaxReason {
		errs = append(errs, fmt.Errorf("the reason is longer than %d bytes", MaxReason))
	}
	if !utf8.ValidString(r.Reason) {
		errs = append(errs, errors.New("the reason is not valid UTF-8"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// Cancel asks BigQuery to cancel the job, then records the request and
// BigQuery's answer, and returns the recorded event. Once BigQuery has
// answered, the record is appended even if ctx ends meanwhile (within
// recordTimeout, and whatever bound the appender sets). The error wraps
// ErrInvalid (nothing was asked), ErrRefused (BigQuery's refusal, recorded)
// or events.ErrUnavailable (BigQuery could not answer, or the record could
// not be appended: ask again).
func (c *Canceller) Cancel(ctx context.Context, r Request) (events.Event, error) {
	if err := r.Validate(); err != nil {
		return events.Event{}, err
	}
	at := c.now().UTC()
	state, callErr := c.api.Cancel(ctx, r.Job)
	if ctx.Err() != nil && callErr != nil {
		// The caller left, or the request's deadline passed: BigQuery's
		// answer is unknown, and no event records what may not have
		// happened (if BigQuery cancelled the job, its audit log says so).
		// The request is logged all the same, with who asked.
		c.log.WarnContext(context.WithoutCancel(ctx), "job cancel request failed", "job", r.Job.String(), "by", r.By,
			"at", at, "reason", r.Reason, "answer", clip("unknown: the request ended before BigQuery answered: "+callErr.Error(), maxAnswer))
		return events.Event{}, fmt.Errorf("cancelling %s: %w: %w", r.Job, events.ErrUnavailable, callErr)
	}
	ev := requested(r, at, state, callErr)
	c.logRequest(ctx, &ev, callErr)
	// BigQuery has answered: the record is owed whether or not the caller
	// is still waiting for it.
	rec, stop := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer stop()
	if err := c.app.Append(rec, []events.Event{ev}); err != nil {
		c.log.ErrorContext(ctx, "cancel request not recorded in the event log", "job", r.Job.String(), "by", r.By, "error", err.Error())
		return ev, fmt.Errorf("recording the cancel request of %s (BigQuery answered %q): %w: %w", r.Job, ev.CancelAnswer, events.ErrUnavailable, err)
	}
	switch {
	case callErr == nil:
		return ev, nil
	case errors.Is(callErr, events.ErrUnavailable):
		return ev, fmt.Errorf("cancelling %s: %w", r.Job, callErr)
	default:
		return ev, fmt.Errorf("cancelling %s: %w: %w", r.Job, ErrRefused, callErr)
	}
}

// requested is the event that records a request made at, to which BigQuery
// answered state or callErr. It carries the state BigQuery reported, so
// that a job BigQuery says is DONE leaves the list at once.
func requested(r Request, at time.Time, state events.State, callErr error) events.Event {
	answer := string(state)
	if callErr != nil {
		state, answer = events.StateUnknown, events.CancelAnswerFailed+callErr.Error()
	}
	return events.Event{
		ID:    events.DerivedEventID(r.Job.String(), string(events.KindCancelRequested), r.By, at.Format(time.RFC3339Nano)),
		Kind:  events.KindCancelRequested,
		Job:   r.Job,
		Time:  at,
		State: state,
		Facts: events.Facts{
			CancelRequestedBy: r.By,
			CancelRequestTime: at,
			CancelReason:      r.Reason,
			CancelAnswer:      clip(answer, maxAnswer),
		},
		Source: events.Source{Format: sourceFormat, Method: sourceMethod},
	}
}

// logRequest writes the request to the structured log: who asked to cancel
// which job, when, why, and what BigQuery answered.
func (c *Canceller) logRequest(ctx context.Context, ev *events.Event, callErr error) {
	level, msg := slog.LevelInfo, "job cancel requested"
	if callErr != nil {
		level, msg = slog.LevelWarn, "job cancel request failed"
	}
	c.log.Log(ctx, level, msg, "job", ev.Job.String(), "by", ev.CancelRequestedBy,
		"at", ev.CancelRequestTime, "reason", ev.CancelReason, "answer", ev.CancelAnswer, "event_id", ev.ID)
}

// clip shortens s to at most n bytes without splitting a character.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.ToValidUTF8(s[:n], "")
}
