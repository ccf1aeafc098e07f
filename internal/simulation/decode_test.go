package simulation_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/auditlog"
	"github.com/bqobserver/bqobserver/internal/simulation"
)

// coverage counts the situations a simulated day went through, so that
// the decoding test can show it exercised each of them.
type coverage map[string]int

func (c coverage) note(e *simulation.Entry) {
	c["format "+e.Format]++
	if len(e.Meant) == 0 {
		c["skipped "+e.Skip]++
		return
	}
	ev := &e.Meant[0]
	c[string(ev.Kind)+" "+e.Format]++
	c["method "+ev.Source.Method]++
	c["job type "+ev.JobType]++
	for _, f := range []struct {
		cond bool
		name string
	}{
		{ev.Error != nil, "failed"},
		{ev.Error != nil && ev.Error.Code == "1", "cancelled"},
		{ev.QueryTruncated, "query truncated"},
		{len(ev.Query) > 50000 && !ev.QueryTruncated, "query over 50K whole"},
		{ev.ParentJobID != "", "script child"},
		{ev.StatementType == "SCRIPT", "script"},
		{ev.CacheHit != nil, "cache hit"},
		{ev.State == events.StatePending, "pending"},
		{len(ev.Labels) > 0, "labels"},
		{ev.Reservation == "unreserved", "on demand"},
		{len(ev.SourceURIs) > 0, "source uris"},
		{len(ev.ReferencedTables) > 1, "several tables"},
		{ev.Priority == "QUERY_BATCH", "batch"},
		{ev.Kind == events.KindCompleted && ev.SlotMs == nil, "completed without slot time"},
	} {
		cond, name := f.cond, f.name
		if cond {
			c[name]++
		}
	}
}

// TestEntriesDecodeAsMeant decodes every entry of a simulated day with the
// product's own decoder and compares the result, whole, with the event the
// simulator meant the entry to carry. It also checks the limits entries
// keep: one line of JSON under 100,000 bytes, query text cut at 50,000
// characters in v2 only.
func TestEntriesDecodeAsMeant(t *testing.T) {
	org, err := simulation.New(simulation.Config{Seed: 42, Rate: 0.12})
	if err != nil {
		t.Fatal(err)
	}
	cov := coverage{}
	failures := 0
	for e := range org.Generate(24 * time.Hour) {
		cov.note(&e)
		err := checkLimits(&e)
		if err == nil {
			err = checkDecode(&e)
		}
		if err != nil {
			failures++
			t.Errorf("entry %d (%s): %v\n%s", cov["format v1"]+cov["format v2"], e.Format, err, clip(e.Data))
		}
		if failures >= 5 {
			t.Fatal("too many failures")
		}
	}
	t.Logf("coverage: %v", cov)
	for _, want := range []string{
		"inserted v1", "inserted v2", "completed v1", "completed v2", "state_changed v2", "cancel_requested v2",
		"skipped not_a_job_event", "failed", "cancelled", "query truncated", "query over 50K whole", "script child", "script",
		"cache hit", "pending", "labels", "on demand", "source uris", "several tables", "batch", "completed without slot time",
		"job type LOAD", "job type EXTRACT", "job type COPY", "method jobservice.query", "method google.cloud.bigquery.v2.JobService.Query:jobChange",
	} {
		if cov[want] == 0 {
			t.Errorf("a simulated day had no entry with %q: the test does not cover it", want)
		}
	}
}

// checkLimits checks the size and text limits Cloud Logging and BigQuery
// put on entries.
func checkLimits(e *simulation.Entry) error {
	switch {
	case len(e.Data) > 100000:
		return fmt.Errorf("%d bytes: Cloud Logging keeps entries under 100000", len(e.Data))
	case bytes.IndexByte(e.Data, '\n') >= 0:
		return errors.New("the entry spans lines")
	case len(e.Meant) == 0:
		return nil
	}
	ev := &e.Meant[0]
	switch {
	case ev.QueryTruncated && len(ev.Query) != 50000:
		return fmt.Errorf("a truncated query of %d characters, want 50000", len(ev.Query))
	case !ev.QueryTruncated && len(ev.Query) > 50000 && e.Format == simulation.FormatV2:
		return fmt.Errorf("a v2 query of %d characters, not truncated", len(ev.Query))
	}
	return nil
}

// checkDecode decodes one entry and compares the result with Meant, or
// checks that the decoder skips it for the reason the simulator gave.
func checkDecode(e *simulation.Entry) error {
	got, err := auditlog.Decode(e.Data)
	if len(e.Meant) == 0 {
		var skip *auditlog.SkipError
		if !errors.As(err, &skip) || string(skip.Reason) != e.Skip {
			return errors.New("want a skip (" + e.Skip + "), got " + describe(got, err))
		}
		return nil
	}
	if err != nil {
		return err
	}
	if diff := cmp.Diff(e.Meant, got, cmpopts.EquateEmpty()); diff != "" {
		return errors.New("decoded event differs from the meant one (-meant +decoded):\n" + diff)
	}
	return nil
}

func describe(evs []events.Event, err error) string {
	if err != nil {
		return err.Error()
	}
	if len(evs) == 0 {
		return "nothing"
	}
	return string(evs[0].Kind) + " event"
}

func clip(b []byte) string {
	if len(b) > 3000 {
		return string(b[:3000]) + "…"
	}
	return string(b)
}
