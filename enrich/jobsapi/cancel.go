package jobsapi

import (
	"context"

	"github.com/bqobserver/bqobserver/events"
)

// Cancel asks BigQuery to cancel the job (jobs.cancel) and returns the state
// BigQuery reports the job in: DONE when it had already finished, RUNNING
// (or PENDING) while it stops. Asking again is harmless, so failures are
// retried like any other call's; what is left after the retries is a
// *DeniedError, ErrNotFound, ErrRateLimited or ErrUnavailable (the last two
// match events.ErrUnavailable), or BigQuery's refusal as it is.
//
// Unlike the listings, a cancel does not wait for the rate limit: it is an
// operator's rare action, and must not queue behind a cycle of listings.
func (c *Client) Cancel(ctx context.Context, key events.JobKey) (events.State, error) {
	cl := &call{method: MethodCancel, project: key.Project, permission: PermissionUpdate, job: key.JobID, unlimited: true}
	var state events.State
	err := c.do(ctx, cl, func(ctx context.Context) error {
		resp, err := c.svc.Jobs.Cancel(key.Project, key.JobID).Location(key.Location).Context(ctx).Do()
		if err == nil && resp.Job != nil && resp.Job.Status != nil {
			state = events.State(resp.Job.Status.State)
		}
		return err
	})
	return state, err
}
