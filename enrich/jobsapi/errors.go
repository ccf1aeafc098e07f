package jobsapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"google.golang.org/api/googleapi"

	"github.com/bqobserver/bqobserver/events"
)

// The kinds of failure a call ends with once its retries are spent. Callers
// decide what to do by kind, with errors.Is and errors.As, never by text.
// ErrRateLimited and ErrUnavailable both match events.ErrUnavailable: the
// call may succeed if made again later.
var (
	// ErrNotFound: the API does not know the job (expired, never existed) or
	// the project (deleted).
	ErrNotFound = errors.New("not found")
	// ErrRateLimited: the API answered rateLimitExceeded or quotaExceeded
	// (429, or 403 with that reason) to every attempt.
	ErrRateLimited = fmt.Errorf("rate limited: %w", events.ErrUnavailable)
	// ErrUnavailable: the API failed (5xx), timed out or could not be
	// reached on every attempt, or the caller's context ended.
	ErrUnavailable = fmt.Errorf("jobs API unavailable: %w", events.ErrUnavailable)
)

// ViewerRole is the predefined role that grants everything enrichment
// asks of the jobs API (bigquery.jobs.listAll, bigquery.jobs.list and
// bigquery.jobs.get), at the organization, a folder or a project.
const ViewerRole = "roles/bigquery.resourceViewer"

// The permissions each call needs.
const (
	PermissionListAll = "bigquery.jobs.listAll"
	PermissionGet     = "bigquery.jobs.get"
	// PermissionUpdate is what jobs.cancel needs of another user's job.
	PermissionUpdate = "bigquery.jobs.update"
)

// CancelRole is the predefined role that grants PermissionUpdate ("can
// cancel jobs from other users"); it also grants access to data, so a
// custom role with PermissionUpdate alone is the least privilege.
const CancelRole = "roles/bigquery.admin"

// DeniedError is a 403 that is not a rate limit: the caller lacks
// Permission on Project. BigQuery's message is kept as it is.
type DeniedError struct {
	Project    string
	Method     string
	Permission string
	Message    string
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("%s on project %s denied: missing %s: %s", e.Method, e.Project, e.Permission, e.Message)
}

// Role is the role that grants the missing permission.
func (e *DeniedError) Role() string {
	if e.Permission == PermissionUpdate {
		return CancelRole
	}
	return ViewerRole
}

// Fix says, in one sentence, which grant ends the denial.
func (e *DeniedError) Fix() string {
	if e.Permission == PermissionUpdate {
		return "Grant a custom role carrying " + PermissionUpdate + " (or " + CancelRole + ") to the service's identity on the organization (or on project " +
			e.Project + " or its folder): cancelling another user's job needs it."
	}
	return Fix(e.Project)
}

// Fix is the grant that lets the service see into project's jobs.
func Fix(project string) string {
	return "Grant " + ViewerRole + " to the service's identity on the organization (or on project " + project +
		" or its folder): it carries " + PermissionListAll + " and " + PermissionGet + "."
}

// kind is how a failed attempt is treated.
type kind int

const (
	kindOK          kind = iota // the attempt succeeded
	kindFatal                   // give up: the call can never succeed as it is
	kindDenied                  // give up: a permission is missing
	kindNotFound                // give up: nothing to find
	kindRateLimited             // retry after a backoff
	kindUnavailable             // retry after a backoff
)

// Reasons of BigQuery's ErrorProto that mean "too many requests"
// (https://cloud.google.com/bigquery/docs/error-messages).
var rateReasons = map[string]bool{"rateLimitExceeded": true, "quotaExceeded": true}

// classify tells what an attempt's error means. A 403 is a rate limit when
// any of its reasons says so, and a denial otherwise.
func classify(ctx context.Context, err error) kind {
	var ge *googleapi.Error
	switch {
	case ctx.Err() != nil:
		return kindUnavailable
	case errors.As(err, &ge):
		return classifyStatus(ge)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return kindUnavailable
	}
	return kindFatal
}

func classifyStatus(ge *googleapi.Error) kind {
	switch {
	case ge.Code == http.StatusTooManyRequests:
		return kindRateLimited
	case ge.Code == http.StatusForbidden && hasRateReason(ge):
		return kindRateLimited
	case ge.Code == http.StatusForbidden:
		return kindDenied
	case ge.Code == http.StatusNotFound:
		return kindNotFound
	case ge.Code >= 500 || ge.Code == http.StatusRequestTimeout:
		return kindUnavailable
	}
	return kindFatal
}

func hasRateReason(ge *googleapi.Error) bool {
	for _, it := range ge.Errors {
		if rateReasons[it.Reason] {
			return true
		}
	}
	return false
}

// outcome names a kind for metrics and logs.
func (k kind) outcome() string {
	return [...]string{"ok", "error", "denied", "not_found", "rate_limited", "unavailable"}[k]
}

// failure turns the last attempt's error into the error a call returns.
func failure(ctx context.Context, c *call, err error) error {
	switch classify(ctx, err) {
	case kindDenied:
		var ge *googleapi.Error
		errors.As(err, &ge)
		return fmt.Errorf("%s: %w", c, &DeniedError{Project: c.project, Method: c.method, Permission: c.permission, Message: ge.Message})
	case kindNotFound:
		return fmt.Errorf("%s: %w: %w", c, ErrNotFound, err)
	case kindRateLimited:
		return fmt.Errorf("%s: %w: %w", c, ErrRateLimited, err)
	case kindUnavailable:
		return fmt.Errorf("%s: %w: %w", c, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", c, err)
}
