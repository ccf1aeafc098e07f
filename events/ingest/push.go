package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/bqobserver/bqobserver/events/auditlog"
	"github.com/bqobserver/bqobserver/events/bus"
)

// PushHandler returns the push intake: it accepts the standard Pub/Sub push
// envelope (POST, JSON body) and runs the same handler chain as the pull
// intake. It answers
//
//   - 204 once the entry's events are durable in the log and published on
//     the events topic, or the entry was skipped, or it was malformed and is
//     now on the dead-letter topic (Pub/Sub must not retry it);
//   - 429 when too many pushes are in flight, and 503 with Retry-After on a
//     transient failure or when PushTimeout passes first (an RFC 9457
//     problem document): Pub/Sub redelivers with its push backoff;
//   - 405 for another method and 413 for a body larger than any Pub/Sub
//     message.
//
// Authentication of push requests is not done here: mount the handler
// behind whatever verifies the push subscription's identity, or keep the
// server on loopback.
func (p *Pipeline) PushHandler() http.Handler {
	return http.HandlerFunc(p.servePush)
}

func (p *Pipeline) servePush(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "push deliveries are POST requests", http.StatusMethodNotAllowed)
		return
	}
	select {
	case p.push <- struct{}{}:
		defer func() { <-p.push }()
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many push deliveries in flight", http.StatusTooManyRequests)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, p.cfg.PushMaxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		http.Error(w, "push body too large", http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		http.Error(w, "reading the push body failed", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.cfg.PushTimeout)
	defer cancel()
	if err := p.pushEntry(ctx, body); err != nil {
		pushUnavailable(w, r, errors.Is(ctx.Err(), context.DeadlineExceeded))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// pushEntry handles one push body. An error means transient: the push must
// be retried.
func (p *Pipeline) pushEntry(ctx context.Context, body []byte) error {
	o := &outcome{intake: intakePush}
	ctx = withOutcome(ctx, o)
	pm, err := auditlog.ParsePushEnvelope(body)
	if err != nil {
		return p.deadLetterEnvelope(ctx, body, err)
	}
	msg := message.NewMessage(pm.MessageID, pm.Data)
	for k, v := range pm.Attributes {
		msg.Metadata.Set(k, v)
	}
	msg.SetContext(ctx)
	_, err = p.chain(msg)
	return err
}

// deadLetterEnvelope keeps a push body that is not a usable envelope: the
// whole body is the payload, since there is no message to take apart.
func (p *Pipeline) deadLetterEnvelope(ctx context.Context, body []byte, cause error) error {
	sum := sha256.Sum256(body)
	msg := message.NewMessage("envelope-"+hex.EncodeToString(sum[:8]), body)
	msg.SetContext(ctx)
	reason := string(auditlog.ReasonBadEnvelope)
	msg.Metadata.Set(bus.MetaReason, reason)
	msg.Metadata.Set(MetaIntake, intakePush)
	msg.Metadata.Set(middleware.ReasonForPoisonedKey, cause.Error())
	if err := p.pub.Publish(p.cfg.DeadLetterTopic, msg); err != nil {
		p.metrics.redelivered.WithLabelValues(intakePush).Inc()
		p.log.Warn("push body could not be dead-lettered", "error", err.Error())
		return err
	}
	p.metrics.deadLettered.WithLabelValues(reason).Inc()
	p.metrics.received.WithLabelValues(intakePush).Inc()
	p.log.Warn("push body dead-lettered", "reason", reason, "error", cause.Error())
	return nil
}
