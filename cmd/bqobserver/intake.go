package main

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/bqobserver/bqobserver/events/bus"
)

// intakeFlags size the service's intake: how each pull subscriber (the
// ingest subscription and the replica's subscription on the events topic)
// receives, and how the appender batches its writes to the event log. The
// defaults are measured: see the README's performance section, and
// docs/PERFORMANCE.md for the measurements behind each.
type intakeFlags struct {
	PullStreams            int `help:"StreamingPull streams of each pull subscriber (the ingest subscription and this replica's events subscription). One stream carries about 2,000 messages a second from the emulator, which serves the streams in turns; 8 drain a large backlog faster than 4 at the same cost a message. The embedded mode opens at least 8." default:"8"`
	MaxOutstandingMessages int `help:"Messages each pull subscriber holds unacknowledged at once, across its streams: enough to keep the appender's batches full; more only costs memory (each message in hand holds a few goroutines)." default:"1000"`
	MaxOutstandingBytes    int `help:"Bytes of messages each pull subscriber holds unacknowledged at once, a bound on memory for large entries." default:"67108864"`
	AppendBatch            int `help:"Most events one write to the event log carries (concurrent appends share a write)." default:"500"`
	AppendWorkers          int `help:"Writes to the event log in flight at once." default:"4"`
	EventsPerMessage       int `help:"Most events one message on the events topic carries: each write to the event log is published in as few messages as this allows, since Pub/Sub's cost is per message. 1 publishes every event in a message of its own (the one-event form), for subscribers that read no other." default:"500"`

	CatchingUpAfter time.Duration `help:"How far behind the audit log the list may fall (by Pub/Sub publish time: the oldest entry being ingested plus the oldest event being applied, plus in the embedded mode how far the simulated organization is behind real time) before the summary, the UI and /readyz say it is catching up." default:"10s"`
}

// listLag is how far the running-jobs list is behind the audit log: the age
// of the oldest audit entry being ingested plus that of the oldest event the
// live feed is applying (from its publication on the events topic), or of
// the oldest this replica published and its feed has not received back
// (see bus.Echo), whichever is older. An entry
// passes both stages in turn, so the sum estimates, from above, how late the
// list shows what the audit log holds.
//
// In the embedded mode the simulated organization stands for the audit
// log's delivery, and source is how far it is behind real time: when the
// machine cannot run it at its rate, it holds itself back rather than
// pile up entries in memory (see simulation.Org.Run), and that delay is
// part of how late the list is.
type listLag struct {
	ingest, feed *bus.Lag
	source       func() time.Duration // nil outside the embedded mode
}

func (l *listLag) behind(now time.Time) time.Duration {
	d := l.ingest.Behind(now)
	if l.feed != nil {
		d += l.feed.Behind(now)
	}
	if l.source != nil {
		d += l.source()
	}
	return d
}

// validate reports every flag out of range at once. Pub/Sub reads a
// negative limit as none, so every limit must be positive.
func (f *intakeFlags) validate() error {
	var errs []error
	for name, v := range map[string]int{"--pull-streams": f.PullStreams, "--max-outstanding-messages": f.MaxOutstandingMessages,
		"--max-outstanding-bytes": f.MaxOutstandingBytes, "--append-batch": f.AppendBatch, "--append-workers": f.AppendWorkers,
		"--events-per-message": f.EventsPerMessage} {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1, not %d", name, v))
		}
	}
	if f.CatchingUpAfter <= 0 {
		errs = append(errs, fmt.Errorf("--catching-up-after must be positive, not %s", f.CatchingUpAfter))
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// receiveSettings are the flow-control settings of every pull subscriber.
func (f *intakeFlags) receiveSettings(b *backends) pubsub.ReceiveSettings {
	rs := pubsub.DefaultReceiveSettings
	rs.NumGoroutines = f.PullStreams
	rs.MaxOutstandingMessages = f.MaxOutstandingMessages
	rs.MaxOutstandingBytes = f.MaxOutstandingBytes
	if b.PubSubMode == modeEmbedded {
		// The in-process Pub/Sub hands each stream about a hundred
		// messages a second; more streams lift that ceiling.
		rs.NumGoroutines = max(rs.NumGoroutines, 8)
	}
	return rs
}

// appenderConfig is the appender's configuration for the events topic;
// logger hears of the values the plausibility rule drops.
func (f *intakeFlags) appenderConfig(topic string, logger *slog.Logger) bus.AppenderConfig {
	return bus.AppenderConfig{Topic: topic, Logger: logger, Batch: f.AppendBatch, Workers: f.AppendWorkers, MessageEvents: f.EventsPerMessage}
}
