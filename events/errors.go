package events

import "errors"

// ErrUnavailable marks a failure of a backing store or transport that may
// succeed if tried again later (Bigtable or Pub/Sub unreachable, deadline
// exceeded, quota). Pipelines retry it and never dead-letter it.
var ErrUnavailable = errors.New("backend unavailable")

// ErrInvalid marks input that will never succeed however often it is tried.
// Pipelines dead-letter it with its reason.
var ErrInvalid = errors.New("invalid input")
