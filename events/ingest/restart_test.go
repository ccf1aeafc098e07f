package ingest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/auditlog"
	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/internal/testutil/envtest"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/schema"
)

// TestPipelineBigtableEmulatorRestart stops the Bigtable emulator in the
// middle of the stream and starts it again. The emulator forgets everything
// when it stops, so the test re-creates the table and checks what it
// honestly can: every entry delivered after the stop has all its events in
// the log, the log holds nothing that was not in the stream, and the
// dead-letter topic holds exactly the malformed entries.
func TestPipelineBigtableEmulatorRestart(t *testing.T) {
	bin := envtest.Getenv(t, "BQOBSERVER_CBTEMULATOR_BIN", "a cbtemulator binary to stop and restart")
	emu := logtest.StartCbtemulator(t, bin)
	c := newCorpus(t, 600, 17)
	h := newHarness(t, harnessOpts{pull: true, bigtableAddr: emu.Addr, appendTimeout: 500 * time.Millisecond, cfg: Config{
		Retry: bus.RetryConfig{MaxRetries: 2, InitialInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond}}})
	half := len(c.deliveries) / 2
	h.publish(c.deliveries[:half])
	waitFor(t, time.Minute, "the first half to settle", func() bool { return h.settled() >= half })

	emu.Stop()
	h.publish(c.deliveries[half:])
	waitFor(t, time.Minute, "entries to be handed back while Bigtable is down", func() bool {
		return testutilCount(h.pipe.metrics.redelivered.WithLabelValues(intakePull)) >= 10
	})
	emu.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := schema.ApplyBigtable(ctx, h.admin, h.table, logtest.Retention); err != nil {
		t.Fatalf("re-creating the table: %v", err)
	}
	waitFor(t, 3*time.Minute, "every delivery to settle after the restart", func() bool { return h.settled() >= len(c.deliveries) })

	logged := map[string]events.Event{}
	for _, e := range h.logged() {
		logged[e.ID] = e
	}
	for id := range logged {
		if _, ok := c.want[id]; !ok {
			t.Errorf("the log holds event %s, which no entry carried", id)
		}
	}
	for _, d := range c.deliveries[half:] {
		for _, id := range eventIDs(t, d) {
			if _, ok := logged[id]; !ok {
				t.Errorf("event %s of an entry delivered after the restart is missing from the log", id)
			}
		}
	}
	dead := map[string]bool{}
	for _, m := range h.drain(deadSub, time.Second, atLeast(len(c.malformed))) {
		dead[string(m.Data)] = true
	}
	if len(dead) != len(c.malformed) {
		t.Errorf("dead-letter topic holds %d entries, want the %d malformed ones", len(dead), len(c.malformed))
	}
	for p := range dead {
		if _, ok := c.malformed[p]; !ok {
			t.Errorf("a well-formed entry was dead-lettered: %.200s", p)
		}
	}
}

func eventIDs(t *testing.T, entry []byte) []string {
	t.Helper()
	evs, err := auditlog.Decode(entry)
	if err != nil && !errors.Is(err, auditlog.ErrSkip) && !errors.Is(err, events.ErrInvalid) {
		t.Fatal(fmt.Errorf("decoding a corpus entry: %w", err))
	}
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return ids
}
