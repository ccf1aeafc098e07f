// Package schema defines the stores bqobserver owns and applies those
// definitions idempotently: the Bigtable table of the event log (its column
// families and garbage-collection rules, embedded from bigtable.json, with
// the row keys described in ROWKEYS.md), the Pub/Sub topology, and the
// BigQuery job history (the job_versions table, whose schema
// job_versions.json is generated from the field table of package jobfields,
// the views in views/, and the on-demand price table prices.json). Running
// an Apply function again changes nothing; running it with new settings
// updates what differs and never deletes data.
package schema
