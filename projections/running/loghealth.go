package running

import "context"

// ReportLog records the outcome of the latest check that the event log
// answers: nil when it did, otherwise why it did not (unreachable, too
// slow, its table missing). While the latest check failed, /readyz says the
// service is degraded, with that reason, because the service can then
// neither append what it ingests nor read a job's timeline; the list, which
// is in memory, keeps answering. A change either way is logged once.
func (p *Projection) ReportLog(ctx context.Context, err error) {
	if err == nil {
		if p.logProblem.Swap(nil) != nil {
			p.logger.InfoContext(ctx, "the event log answers again")
		}
		return
	}
	reason := "the event log does not answer: " + err.Error()
	if p.logProblem.Swap(&reason) == nil {
		p.logger.WarnContext(ctx, "the event log does not answer; /readyz says so until it does", "error", err.Error())
	}
}

// logUnreachable returns why the event log did not answer at its latest
// check, or "" when it did.
func (p *Projection) logUnreachable() string {
	if r := p.logProblem.Load(); r != nil {
		return *r
	}
	return ""
}
