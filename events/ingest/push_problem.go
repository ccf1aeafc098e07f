package ingest

import (
	"net/http"

	"github.com/bqobserver/bqobserver/internal/problem"
)

// pushRetryAfter is what a 503 from the push intake asks the sender to
// wait, in seconds. (Pub/Sub pushes again with its own backoff.)
const pushRetryAfter = "5"

// pushUnavailable answers a push that could not be ingested now: 503 with
// Retry-After, as an RFC 9457 problem document saying whether the push ran
// out of time.
func pushUnavailable(w http.ResponseWriter, r *http.Request, timedOut bool) {
	detail := "temporarily unable to ingest the entry; push it again later"
	if timedOut {
		detail = "the entry could not be ingested within the push timeout; push it again later"
	}
	w.Header().Set("Retry-After", pushRetryAfter)
	problem.Write(w, r, http.StatusServiceUnavailable, detail)
}
