package running

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
)

// backendCheck holds the outcome of the latest check that one backend the
// service needs answers: nil when it did, otherwise why it did not.
type backendCheck struct {
	name    string // the backend, as a sentence's subject: "the event log"
	problem atomic.Pointer[string]
}

// report records the outcome of a check, logging a change either way once.
func (c *backendCheck) report(ctx context.Context, logger *slog.Logger, err error) {
	if err == nil {
		if c.problem.Swap(nil) != nil {
			logger.InfoContext(ctx, c.name+" answers again")
		}
		return
	}
	reason := c.name + " does not answer: " + err.Error()
	if c.problem.Swap(&reason) == nil {
		logger.WarnContext(ctx, c.name+" does not answer; /readyz says so until it does", "error", err.Error())
	}
}

// reason returns why the backend did not answer at its latest check, or ""
// when it did.
func (c *backendCheck) reason() string {
	if r := c.problem.Load(); r != nil {
		return *r
	}
	return ""
}

// ReportLog records the outcome of the latest check that the event log
// answers: nil when it did, otherwise why it did not (unreachable, too
// slow, its table missing). While the latest check failed, /readyz says the
// service is degraded, with that reason, because the service can then
// neither append what it ingests nor read a job's timeline; the list, which
// is in memory, keeps answering. A change either way is logged once.
func (p *Projection) ReportLog(ctx context.Context, err error) {
	p.logHealth.report(ctx, p.logger, err)
}

// ReportPubSub records the outcome of the latest check that Pub/Sub
// answers (its topics and subscriptions could be looked up): nil when it
// did, otherwise why not. While it does not, nothing new reaches the list
// (neither audit entries nor the events of this service's own appends)
// and its lag cannot show it, since the lag is measured on what arrives:
// /readyz says the service is degraded, with the reason. A change either
// way is logged once.
func (p *Projection) ReportPubSub(ctx context.Context, err error) {
	p.pubsubHealth.report(ctx, p.logger, err)
}

// ReportDetached records the subscriptions the service needs that the
// latest check of Pub/Sub found attached to a deleted topic (none: nil).
// Pub/Sub answers, but nothing published to the topic, even created again,
// reaches such a subscription: while any is reported, /readyz says the
// service is degraded and names them in detached_subscriptions. A change
// is logged once.
func (p *Projection) ReportDetached(ctx context.Context, names []string) {
	var now *[]string
	if len(names) > 0 {
		c := slices.Clone(names)
		now = &c
	}
	before := p.detached.Swap(now)
	switch {
	case now == nil && before != nil:
		p.logger.InfoContext(ctx, "no subscription the service needs is attached to a deleted topic any more")
	case now != nil && (before == nil || !slices.Equal(*before, *now)):
		p.logger.WarnContext(ctx, "subscriptions the service needs are attached to a deleted topic; /readyz says so until they are not",
			"subscriptions", strings.Join(*now, ", "))
	}
}

// detachedNames returns the subscriptions the latest check found attached
// to a deleted topic.
func (p *Projection) detachedNames() []string {
	if d := p.detached.Load(); d != nil {
		return *d
	}
	return nil
}
