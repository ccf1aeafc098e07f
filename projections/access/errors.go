package access

import (
	"errors"
	"net/http"
)

// The kinds of refusal; every error of this package that refuses a request
// wraps one of them.
var (
	// ErrUnauthenticated: no credentials, or credentials that do not verify
	// (401).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: verified credentials of a caller who may not do this
	// (403).
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable: credentials cannot be checked now, because the keys
	// that verify them could not be fetched (503).
	ErrUnavailable = errors.New("cannot verify credentials now")
	// ErrUnsupportedMediaType: a state-changing request whose body is not
	// declared application/json (415).
	ErrUnsupportedMediaType = errors.New("unsupported media type")
)

// StatusOf returns the HTTP status that answers err: 401, 403, 503 or 415
// for the kinds above, 500 for anything else.
func StatusOf(err error) int {
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrUnsupportedMediaType):
		return http.StatusUnsupportedMediaType
	default:
		return http.StatusInternalServerError
	}
}
