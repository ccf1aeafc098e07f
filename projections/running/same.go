package running

import (
	"maps"
	"slices"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// sameJob reports whether two states of a job look the same to every reader
// of the API, so that a duplicate event publishes no change.
func sameJob(a, b *events.Job) bool {
	return a.Key == b.Key && a.State == b.State && samePtr(a.Error, b.Error) &&
		a.FirstSeen.Equal(b.FirstSeen) && a.LastSeen.Equal(b.LastSeen) &&
		a.CancelRequested == b.CancelRequested && a.Reconciled == b.Reconciled &&
		sameText(&a.Facts, &b.Facts) && sameNumbers(&a.Facts, &b.Facts)
}

func sameText(a, b *events.Facts) bool {
	return a.Principal == b.Principal && a.JobType == b.JobType && a.StatementType == b.StatementType &&
		a.Priority == b.Priority && a.Query == b.Query && a.QueryTruncated == b.QueryTruncated &&
		maps.Equal(a.Labels, b.Labels) && a.Reservation == b.Reservation &&
		slices.Equal(a.ReferencedTables, b.ReferencedTables) && a.DestinationTable == b.DestinationTable &&
		slices.Equal(a.SourceTables, b.SourceTables) && slices.Equal(a.SourceURIs, b.SourceURIs) &&
		slices.Equal(a.DestinationURIs, b.DestinationURIs) && a.ParentJobID == b.ParentJobID
}

func sameNumbers(a, b *events.Facts) bool {
	return sameTime(a.CreateTime, b.CreateTime) && sameTime(a.StartTime, b.StartTime) && sameTime(a.EndTime, b.EndTime) &&
		samePtr(a.BytesProcessed, b.BytesProcessed) && samePtr(a.BytesBilled, b.BytesBilled) &&
		samePtr(a.SlotMs, b.SlotMs) && samePtr(a.BillingTier, b.BillingTier) && samePtr(a.CacheHit, b.CacheHit) &&
		samePtr(a.OutputRows, b.OutputRows) && samePtr(a.ActiveUnits, b.ActiveUnits) &&
		samePtr(a.CompletedUnits, b.CompletedUnits) && samePtr(a.PendingUnits, b.PendingUnits)
}

func sameTime(a, b time.Time) bool { return a.Equal(b) }

func samePtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
