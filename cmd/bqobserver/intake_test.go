package main

import (
	"testing"
	"time"
)

// TestIntakeFlagsValidate rejects every limit below 1 at once, since
// Pub/Sub reads a negative one as no limit.
func TestIntakeFlagsValidate(t *testing.T) {
	good := intakeFlags{PullStreams: 4, MaxOutstandingMessages: 1000, MaxOutstandingBytes: 1 << 26, AppendBatch: 500, AppendWorkers: 4, EventsPerMessage: 500, CatchingUpAfter: time.Second}
	if err := good.validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	bad := intakeFlags{PullStreams: 0, MaxOutstandingMessages: -1, MaxOutstandingBytes: 1, AppendBatch: 1, AppendWorkers: 1, EventsPerMessage: 0}
	got := bad.validate()
	want := "--catching-up-after must be positive, not 0s\n--events-per-message must be at least 1, not 0\n--max-outstanding-messages must be at least 1, not -1\n--pull-streams must be at least 1, not 0"
	if got == nil || got.Error() != want {
		t.Errorf("validate = %v; want\n%s", got, want)
	}
}
