package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/auditlog"
	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/internal/problem"
)

// PushHandler returns the push intake: it accepts the standard Pub/Sub push
// envelope (POST, JSON body) and runs the same handler chain as the pull
// intake. It reads the body first, within Config.PushReadTimeout and
// charging Config.PushMaxInFlightBytes as it arrives, and only then takes
// one of the Config.PushMaxInFlight slots, so that bodies sent slowly hold
// no slot and little memory. It answers
//
//   - 204 once the entry's events are durable in the log and published on
//     the events topic, or the entry was skipped, or it was malformed (or
//     the body was not an envelope, or larger than Config.PushMaxBody) and
//     is now on the dead-letter topic (Pub/Sub must not retry it);
//   - 429 when too many pushes or push bytes are in flight, and 503 with
//     Retry-After on a transient failure or when PushTimeout passes first:
//     Pub/Sub redelivers with its push backoff;
//   - 405 for another method, 408 for a body not received in time, 413 for
//     a body larger than any Pub/Sub push (pushCeiling); every refusal is a
//     problem document, counted by status.
//
// Authentication of push requests is not done here: mount the handler
// behind whatever verifies the push subscription's identity (and refuses
// other content types than application/json), or keep the server on
// loopback.
func (p *Pipeline) PushHandler() http.Handler {
	return http.HandlerFunc(p.servePush)
}

func (p *Pipeline) servePush(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		p.refusePush(w, r, http.StatusMethodNotAllowed, "push deliveries are POST requests")
		return
	}
	c := &charge{b: p.budget}
	defer c.release()
	body, err := readPush(w, r, p.cfg.PushMaxBody, p.cfg.PushReadTimeout, c)
	var oversize *oversizeError
	if err != nil && !errors.As(err, &oversize) {
		if errors.Is(err, errPushBusy) {
			w.Header().Set("Retry-After", "1")
		}
		p.refusePush(w, r, pushReadStatus(err), err.Error())
		return
	}
	select {
	case p.push <- struct{}{}:
		defer func() { <-p.push }()
	default:
		w.Header().Set("Retry-After", "1")
		p.refusePush(w, r, http.StatusTooManyRequests, "too many push deliveries in flight")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.cfg.PushTimeout)
	defer cancel()
	if oversize != nil {
		err = p.pushOversize(ctx, oversize)
	} else {
		err = p.pushEntry(ctx, body)
	}
	if err != nil {
		pushUnavailable(w, r, errors.Is(ctx.Err(), context.DeadlineExceeded))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// RefusePush counts a push refused in front of the intake (by the token
// check or the content-type check): pass it as their OnReject.
func (p *Pipeline) RefusePush(r *http.Request, status int, err error) {
	p.metrics.pushRefused.WithLabelValues(strconv.Itoa(status)).Inc()
	p.log.Warn("push refused", "status", status, "error", err.Error(), "remote", r.RemoteAddr)
}

// refusePush answers a push the intake refuses, and counts it.
func (p *Pipeline) refusePush(w http.ResponseWriter, r *http.Request, status int, detail string) {
	p.metrics.pushRefused.WithLabelValues(strconv.Itoa(status)).Inc()
	problem.Write(w, r, status, detail)
}

// pushEntry handles one push body. An error means transient: the push must
// be retried.
func (p *Pipeline) pushEntry(ctx context.Context, body []byte) error {
	o := &outcome{intake: intakePush}
	ctx = withOutcome(ctx, o)
	pm, err := auditlog.ParsePushEnvelope(body)
	if err != nil {
		start := time.Now()
		sum := sha256.Sum256(body)
		err := p.deadLetterBody(ctx, keptBody{head: body, size: int64(len(body)), sha256: hex.EncodeToString(sum[:])}, auditlog.ReasonBadEnvelope, err)
		// Counted as every delivery is (observe): received, then
		// dead-lettered or handed back, and timed.
		p.metrics.observe(intakePush, o, err, time.Since(start))
		return err
	}
	msg := message.NewMessage(pm.MessageID, pm.Data)
	for k, v := range pm.Attributes {
		msg.Metadata.Set(k, v)
	}
	if pm.PublishTime != "" {
		msg.Metadata.Set(bus.MetaPublished, pm.PublishTime)
	}
	msg.SetContext(ctx)
	_, err = p.chain(msg)
	return err
}

// pushOversize dead-letters a push body larger than the intake takes,
// which Pub/Sub would otherwise push again at every refusal. An error means
// transient: the push must be retried.
func (p *Pipeline) pushOversize(ctx context.Context, e *oversizeError) error {
	o := &outcome{intake: intakePush}
	ctx = withOutcome(ctx, o)
	start := time.Now()
	err := p.deadLetterBody(ctx, keptBody{head: e.head, tail: e.tail, size: e.size, sha256: e.sha256}, auditlog.ReasonBodyTooLarge, e)
	p.metrics.observe(intakePush, o, err, time.Since(start))
	return err
}

// Metadata of a dead-lettered push body that is not an envelope, or too
// large, whose copy may be cut short.
const (
	// MetaBodyBytes is the length of the whole body.
	MetaBodyBytes = "bqobserver_body_bytes"
	// MetaBodySHA256 is the hex SHA-256 digest of the whole body.
	MetaBodySHA256 = "bqobserver_body_sha256"
	// MetaBodyTruncated is "true" when the payload holds only the start of
	// the body.
	MetaBodyTruncated = "bqobserver_body_truncated"
	// MetaBodyTail is the body's last 512 bytes when the payload holds
	// only its start (bytes that are not UTF-8 shown as U+FFFD, see
	// events.BoundAttribute).
	MetaBodyTail = "bqobserver_body_tail"
)

// keptBody is what the intake kept of a push body: its start (the whole
// body, when it was read whole), its end when only its start was kept,
// its length and its digest.
type keptBody struct {
	head, tail []byte
	size       int64
	sha256     string
}

// deadLetterBody keeps a push body that is not a usable envelope: there is
// no message to take apart, so the body is the payload, cut to
// Config.DeadLetterMaxBody, with its length, digest and end beside the
// reason.
func (p *Pipeline) deadLetterBody(ctx context.Context, b keptBody, reason auditlog.ErrorReason, cause error) error {
	payload := b.head
	if int64(len(payload)) > p.cfg.DeadLetterMaxBody {
		payload = payload[:p.cfg.DeadLetterMaxBody]
	}
	tail := b.tail
	if tail == nil && int64(len(b.head)) > p.cfg.DeadLetterMaxBody {
		tail = b.head[max(0, len(b.head)-keptTail):]
	}
	msg := message.NewMessage("push-body-"+b.sha256[:16], payload)
	msg.SetContext(ctx)
	msg.Metadata.Set(bus.MetaReason, string(reason))
	msg.Metadata.Set(MetaIntake, intakePush)
	msg.Metadata.Set(middleware.ReasonForPoisonedKey, cause.Error())
	msg.Metadata.Set(MetaBodyBytes, strconv.FormatInt(b.size, 10))
	msg.Metadata.Set(MetaBodySHA256, b.sha256)
	if int64(len(payload)) < b.size {
		msg.Metadata.Set(MetaBodyTruncated, "true")
		// An attribute is a UTF-8 string: a cut through a character, or
		// a body that is not text, must not make the publish fail.
		msg.Metadata.Set(MetaBodyTail, events.BoundAttribute(string(tail)))
	}
	if err := p.pub.Publish(p.cfg.DeadLetterTopic, msg); err != nil {
		p.log.Warn("push body could not be dead-lettered", "reason", string(reason), "error", err.Error())
		return err
	}
	outcomeOf(ctx).reason = string(reason)
	p.log.Warn("push body dead-lettered", "reason", string(reason), "error", cause.Error(), "bytes", b.size, "sha256", b.sha256)
	return nil
}
