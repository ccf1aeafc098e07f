package running

import (
	"context"
	"fmt"
	"net/http"

	"github.com/bqobserver/bqobserver/projections/access"
)

// pinger is an event log that can say whether it answers (an *events.Log).
type pinger interface {
	Ping(ctx context.Context) error
}

// Readiness states in /readyz's body. All are answered with 200: the list
// is served from memory in each.
const (
	readyOK         = "ready"
	readyCatchingUp = "catching_up"
	readyDegraded   = "degraded"
)

// readyJSON is /readyz's body once the projection is ready.
type readyJSON struct {
	Status string `json:"status"`
	// Meaning says in a sentence what Status means for a client of the list.
	Meaning string `json:"meaning"`
	// Jobs is how many jobs are listed; absent for a caller who may not
	// see every job.
	Jobs     *int        `json:"jobs,omitempty"`
	Lag      lagJSON     `json:"lag"`
	EventLog backendJSON `json:"event_log"`
	PubSub   backendJSON `json:"pubsub"`
	// DetachedSubscriptions are the subscriptions the service needs that
	// the latest check found attached to a deleted topic.
	DetachedSubscriptions []string `json:"detached_subscriptions,omitempty"`
}

// backendJSON says whether a backend answered its latest check.
type backendJSON struct {
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
}

// serveReady answers 503 until the projection is rebuilt and fed live, and
// 200 after, with a body that says how good the list is: ready, catching
// up (more than CatchingUpAfter behind the audit log) or degraded (the event
// log did not answer a probe within ProbeTimeout, or the latest check of the
// service's resources found it unreachable or its table missing, or found
// Pub/Sub unreachable or a subscription attached to a deleted topic, so
// nothing new, or not everything new, can reach the list). A replica stays
// in rotation while catching up or degraded: every replica shares the log
// and the audit subscription, so taking one out helps no one, and its list
// is still the best there is.
func (p *Projection) serveReady(w http.ResponseWriter, r *http.Request) {
	if !p.Ready() {
		unavailable(w, r, p.cfg.RetryAfter, p.notReadyReason())
		return
	}
	jobs := p.Len()
	body := readyJSON{Jobs: &jobs, Lag: p.lag(p.cfg.Now()), EventLog: p.probe(r.Context()), PubSub: backendJSON{Reachable: true}}
	if reason := p.logHealth.reason(); reason != "" && body.EventLog.Reachable {
		body.EventLog = backendJSON{Error: reason}
	}
	if reason := p.pubsubHealth.reason(); reason != "" {
		body.PubSub = backendJSON{Error: reason}
	}
	body.DetachedSubscriptions = p.detachedNames()
	switch {
	case !body.EventLog.Reachable:
		body.Status = readyDegraded
		body.Meaning = "the event log does not answer (see event_log.error): the list is served from memory but cannot change until the log is back"
	case !body.PubSub.Reachable:
		body.Status = readyDegraded
		body.Meaning = "Pub/Sub does not answer (see pubsub.error): the list is served from memory but nothing new reaches it until Pub/Sub is back, and its lag cannot show it"
	case len(body.DetachedSubscriptions) > 0:
		body.Status = readyDegraded
		body.Meaning = "subscriptions the service needs are attached to a deleted topic (see detached_subscriptions): nothing published to their topic reaches them, " +
			"even once it is created again; drain them, then delete them, and the service (with --auto-create) or bqobserver setup creates them again on the topic"
	case body.Lag.CatchingUp:
		body.Status = readyCatchingUp
		body.Meaning = fmt.Sprintf("the list is served but %d s behind the audit log; it is catching up", int(body.Lag.BehindSeconds))
	default:
		body.Status = readyOK
		body.Meaning = fmt.Sprintf("the list is rebuilt from the event log, fed live and at most %s behind the audit log", p.cfg.CatchingUpAfter)
	}
	if !access.ScopeFrom(r.Context()).SeesAll() {
		body.redact()
	}
	writeJSON(w, r, body)
}

// redact leaves what a caller who may not see every job (or an anonymous
// probe) may know of readiness: the status, its meaning, the lag and
// whether each backend answers, not how many jobs the organization runs
// nor the errors and resource names behind a degraded state.
func (b *readyJSON) redact() {
	b.Jobs = nil
	b.EventLog.Error, b.PubSub.Error = redactedError(b.EventLog.Error), redactedError(b.PubSub.Error)
	if len(b.DetachedSubscriptions) > 0 {
		b.DetachedSubscriptions = []string{redacted}
	}
}

// redacted stands for what a caller who may not see every job is not told.
const redacted = "(shown to callers who see every job, and in the service's log)"

func redactedError(err string) string {
	if err == "" {
		return ""
	}
	return redacted
}

// probe asks the event log whether it answers, within ProbeTimeout.
func (p *Projection) probe(ctx context.Context) backendJSON {
	pl, ok := p.log.(pinger)
	if !ok {
		return backendJSON{Reachable: true}
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ProbeTimeout)
	defer cancel()
	if err := pl.Ping(ctx); err != nil {
		return backendJSON{Error: err.Error()}
	}
	return backendJSON{Reachable: true}
}
