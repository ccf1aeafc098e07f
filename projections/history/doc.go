// Package history is the BigQuery job history: a projection of the event
// log into the table job_versions (schema/job_versions.json), which the views
// of package schema read (jobs: the latest version of each job).
//
// The sink (Sink.Handle) consumes the events topic through a consumer group
// of its own (a Shared bus.Consumer on the history subscription). For every
// event it reads the job's events from the log, folds them with the shared
// fold, and appends one row, the job's current version, through the
// BigQuery Storage Write API's default stream, in batches (a row waits for
// others at most a second). The one exception is a progress sample of a job
// that has not finished: it makes no row, since the next state change
// carries its values (a progress sample on a finished job does make one, as
// does every other late event on a finished job: a late entry, a correction
// from enrichment, a cancel request).
//
// Delivery semantics:
//
//   - An events message is acknowledged only after its job's row is in
//     BigQuery (or, for a progress sample of a running job, once the log
//     said so). A crash or a lost acknowledgement before that leads to a
//     redelivery, which writes the version again.
//   - Delivery is at least once and in any order, and the default stream
//     keeps every row it is given, so a job may have many rows, some of them
//     the same. They are harmless: each row folds the whole of the job's
//     events as the log had them, and the jobs view keeps the version that
//     folds the most events (the log only grows), the latest written among
//     equals. A version written late from an older read loses to any version
//     that saw more; a redelivered or replayed event rewrites the latest.
//   - A row BigQuery refuses for good (it names the row in its answer, or
//     refuses it sent alone) is dead-lettered with the reason row_rejected and
//     the message BigQuery gave; the other rows of its append are sent again
//     without it. Anything else (BigQuery unavailable, a quota, a deadline, a
//     table that setup must upgrade) is transient: retried in process with
//     backoff (bus.Policy), then handed back to Pub/Sub, which redelivers
//     with its own backoff; it is never dead-lettered by the sink.
//
// Replay (Sink.Replay) writes the current version of every job of a time
// range of the log, after an outage, a schema change, or to fill a new
// table; Check compares the log with the jobs view. Both are idempotent.
package history
