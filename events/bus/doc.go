// Package bus is how events move through the product: the one Appender
// every writer of events uses (append to the event log, then publish on the
// events topic), the one Consumer constructor that feeds a projection from
// the events topic, and the one Policy (retry, poison queue, panics) that
// every Watermill handler runs under, ingest included.
//
//	writers (ingest, enrichment, …) ──Append──> event log ──> events topic
//	events topic ──Consumer (subscription, router, Policy)──> projection
//
// Delivery semantics are documented once each: acknowledgement and failures
// of appending on Appender, retries and dead letters on Policy, the
// consumer's lifecycle on Consumer.
package bus
