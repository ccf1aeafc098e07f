// Package schema defines the stores bqobserver owns and applies those
// definitions idempotently: the Bigtable table of the event log (its column
// families and garbage-collection rules, embedded from bigtable.json, with
// the row keys described in ROWKEYS.md) and the Pub/Sub topology. Running an
// Apply function again changes nothing; running it with new settings
// updates what differs and never deletes data.
package schema
