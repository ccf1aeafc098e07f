package events

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// transientCodes are the Bigtable outcomes that are never an event's fault
// and may succeed later: the backend is unreachable, slow, throttled or
// failing, or an operator has yet to create the table or family or to grant
// access. (The Bigtable client retries Unavailable, DeadlineExceeded and
// Aborted itself until the caller's deadline.)
var transientCodes = map[codes.Code]bool{
	codes.Unavailable:       true,
	codes.DeadlineExceeded:  true,
	codes.ResourceExhausted: true,
	codes.Aborted:           true,
	codes.Internal:          true,
	codes.Canceled:          true,
	codes.NotFound:          true,
	codes.PermissionDenied:  true,
	codes.Unauthenticated:   true,
}

// transient reports whether err is one of transientCodes or the end of the
// caller's context (the write did not happen and may be tried again).
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	return transientCodes[status.Code(err)]
}

// BackendError classifies an error of a Bigtable call made outside the
// log (by the other readers and writers of its table, such as enrichment's
// registry) as the log classifies its own: one that may pass wraps
// ErrUnavailable, with the end of ctx if it ended.
func BackendError(ctx context.Context, err error) error { return backendError(ctx, err) }

// backendError classifies an error of a Bigtable call: transient ones wrap
// ErrUnavailable; others (which the log's own checks should make
// impossible) are returned as they are, matching neither sentinel.
func backendError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w (%w)", err, ctxErr)
	}
	if errors.Is(err, ErrUnavailable) { // a read that stalled (readRows) says so already
		return err
	}
	if transient(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// rowErrors classifies the per-row outcome of an ApplyBulk call: every
// failed row is named (the first few in the message), and the whole is
// transient when every failure is.
func rowErrors(keys []string, errs []error) error {
	var failed []string
	var first []error
	allTransient := true
	for i, err := range errs {
		if err == nil {
			continue
		}
		allTransient = allTransient && transient(err)
		if len(failed) < 3 {
			first = append(first, fmt.Errorf("row %q: %w", keys[i], err))
		}
		failed = append(failed, keys[i])
	}
	if len(failed) == 0 {
		return nil
	}
	err := fmt.Errorf("%d of %d rows failed: %w", len(failed), len(keys), errors.Join(first...))
	if allTransient {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
