package simulation

import (
	"errors"
	"fmt"
	"net/http"
)

// Faults are the errors the jobs API answers with on demand, as BigQuery
// does under load. Every answer has BigQuery's error shape (see apiError).
type Faults struct {
	// RateLimitShare is the share of calls answered with
	// rateLimitExceeded, drawn from a stream of Config.Seed of its own, so
	// that one caller making the same calls meets the same errors.
	RateLimitShare float64
	// BackendErrorShare is the share of calls answered with 503
	// backendError, drawn the same way.
	BackendErrorShare float64
	// ProjectQPS caps the calls each project answers per second of wall
	// clock time (API quotas count real requests, whatever the simulation's
	// speed), all methods together; the calls above it are answered with
	// rateLimitExceeded. Zero means no cap.
	ProjectQPS int
	// RateLimitStatus is the HTTP status of a rateLimitExceeded answer:
	// 429 Too Many Requests (the default: how the API front end answers
	// when a per-method request quota is spent) or 403 Forbidden (how
	// BigQuery's error table lists rateLimitExceeded,
	// https://cloud.google.com/bigquery/docs/troubleshoot-quotas). With
	// 403, only the reason tells it from a denied permission.
	RateLimitStatus int
}

func (f *Faults) validate() []error {
	var errs []error
	for _, s := range []struct {
		name string
		v    float64
	}{{"rate limit share", f.RateLimitShare}, {"backend error share", f.BackendErrorShare}} {
		if !(s.v >= 0 && s.v <= 1) {
			errs = append(errs, fmt.Errorf("%s must be between 0 and 1, not %g", s.name, s.v))
		}
	}
	if f.RateLimitShare+f.BackendErrorShare > 1 {
		errs = append(errs, fmt.Errorf("rate limit and backend error shares add up to %g, above 1", f.RateLimitShare+f.BackendErrorShare))
	}
	if f.ProjectQPS < 0 {
		errs = append(errs, fmt.Errorf("project QPS must not be negative, not %d", f.ProjectQPS))
	}
	switch f.RateLimitStatus {
	case 0, http.StatusTooManyRequests, http.StatusForbidden:
	default:
		errs = append(errs, fmt.Errorf("rate limit status must be 429 or 403, not %d", f.RateLimitStatus))
	}
	return errs
}

func (f Faults) withDefaults() Faults {
	if f.RateLimitStatus == 0 {
		f.RateLimitStatus = http.StatusTooManyRequests
	}
	return f
}

// Fault is an error FailNext makes the API answer with.
type Fault string

// Faults FailNext injects.
const (
	// FaultRateLimit is rateLimitExceeded, with Faults.RateLimitStatus.
	FaultRateLimit Fault = "rateLimitExceeded"
	// FaultBackend is 503 backendError.
	FaultBackend Fault = "backendError"
)

// failRule makes the next left calls that match it fail.
type failRule struct {
	project, method string
	left            int
	fault           Fault
}

func (r *failRule) matches(c Call) bool {
	return r.left > 0 && (r.project == "" || r.project == c.Project) && (r.method == "" || r.method == c.Method)
}

// quotaWindow counts a project's calls in one second of wall-clock time.
type quotaWindow struct {
	second int64
	calls  int
}

// SetFaults replaces the faults the API injects. It fails, changing
// nothing, if f is invalid.
func (a *JobsAPI) SetFaults(f Faults) error {
	if err := errors.Join(f.validate()...); err != nil {
		return fmt.Errorf("setting the jobs API's faults: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.faults = f.withDefaults()
	return nil
}

// FailNext makes the next n calls of method (every method if "") on
// project (every project if "") fail with f, after the faults FailNext
// already holds for them.
func (a *JobsAPI) FailNext(project, method string, n int, f Fault) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failing = append(a.failing, &failRule{project: project, method: method, left: n, fault: f})
}

// Deny switches the permission denial of every method on project on or
// off, as granting or revoking a role on the project does.
func (a *JobsAPI) Deny(project string, denied bool) { a.DenyMethod(project, "", denied) }

// DenyMethod switches the permission denial of one method (every method
// if "") on project on or off. A call is denied while its method or every
// method is.
func (a *JobsAPI) DenyMethod(project, method string, denied bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.denied[Call{Method: method, Project: project}] = denied
}

// admit counts the call and returns the fault or denial it meets, or nil.
// Quotas are checked first, as the API front end does before the call
// reaches BigQuery; then BigQuery's own errors and permissions.
func (a *JobsAPI) admit(c Call, denial func() *apiError) *apiError {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls[c]++
	if f, ok := a.nextFault(c); ok {
		return a.faultError(f)
	}
	if a.overQuota(c.Project) {
		return a.faultError(FaultRateLimit)
	}
	switch r := a.rng.uniform(0, 1); {
	case r < a.faults.RateLimitShare:
		return a.faultError(FaultRateLimit)
	case r < a.faults.RateLimitShare+a.faults.BackendErrorShare:
		return a.faultError(FaultBackend)
	}
	if a.denied[c] || a.denied[Call{Project: c.Project}] {
		return denial()
	}
	return nil
}

func (a *JobsAPI) nextFault(c Call) (Fault, bool) {
	for i, r := range a.failing {
		if r.matches(c) {
			r.left--
			if r.left == 0 {
				a.failing = append(a.failing[:i], a.failing[i+1:]...)
			}
			return r.fault, true
		}
	}
	return "", false
}

// overQuota counts a call against its project's per-second cap and
// reports whether it goes over.
func (a *JobsAPI) overQuota(project string) bool {
	if a.faults.ProjectQPS == 0 {
		return false
	}
	s := a.now().Unix()
	w := a.quota[project]
	if w.second != s {
		w = quotaWindow{second: s}
	}
	w.calls++
	a.quota[project] = w
	return w.calls > a.faults.ProjectQPS
}

// Messages of the injected errors, as BigQuery words them.
const (
	rateLimitMessage = "Exceeded rate limits: too many api requests per user per method for this user_method. " +
		"For more information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas"
	backendMessage = "Error encountered during execution. Retrying may solve the problem."
)

func (a *JobsAPI) faultError(f Fault) *apiError {
	if f == FaultBackend {
		return &apiError{status: http.StatusServiceUnavailable, reason: string(FaultBackend), message: backendMessage}
	}
	return &apiError{status: a.faults.RateLimitStatus, reason: string(FaultRateLimit), message: rateLimitMessage}
}
