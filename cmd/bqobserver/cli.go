package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// Defaults for the embedded mode, where nothing is configured.
const (
	localProject  = "bqobserver-local"
	localInstance = "local"
)

// CLI is the command line: global flags and one subcommand. Every flag has an
// environment twin named BQOBSERVER_<FLAG> (see kong.DefaultEnvars in main).
type CLI struct {
	Globals

	Run       RunCmd       `cmd:"" default:"withargs" help:"Run the service (the default command)."`
	Setup     SetupCmd     `cmd:"" help:"Create or update topics, subscriptions, the Bigtable table and the BigQuery history (idempotent)."`
	Decode    DecodeCmd    `cmd:"" help:"Decode audit-log entries and print the job events as JSON lines."`
	Publish   PublishCmd   `cmd:"" help:"Publish audit-log entries to the audit topic."`
	Simulate  SimulateCmd  `cmd:"" help:"Simulate an organization's BigQuery activity."`
	History   HistoryCmd   `cmd:"" help:"Replay or check the job history in BigQuery against the event log."`
	ReportURL ReportURLCmd `cmd:"" name:"report-url" help:"Print a Looker Studio link that opens the job history report on the history's project and dataset."`
	Doctor    DoctorCmd    `cmd:"" help:"Check every dependency the service uses and print what works, what does not and the grant that fixes it; exit 1 if anything is broken."`
	Load      LoadCmd      `cmd:"" help:"Measure the service under load against the emulators and print a report."`
}

// Globals are the settings every subcommand shares.
type Globals struct {
	LogLevel slog.Level `help:"Minimum log level (DEBUG, INFO, WARN, ERROR)." default:"INFO"`

	Project          string `help:"Google Cloud project of the Pub/Sub topics. Empty with no PUBSUB_EMULATOR_HOST: in-process Pub/Sub."`
	BigtableProject  string `help:"Google Cloud project of the Bigtable instance (default: --project)."`
	BigtableInstance string `help:"Bigtable instance. Empty with no BIGTABLE_EMULATOR_HOST: in-process Bigtable."`
	BigtableTable    string `help:"Bigtable table of the event log." default:"bqobserver-events"`
	// A deadline on a whole read would cut a long one short (a replay of a
	// month, a rebuild of many jobs); a read that stalls is what no caller
	// should wait for.
	BigtableStallTimeout time.Duration `name:"bigtable-stall-timeout" help:"Give up a read of the event log, with an error, when Bigtable has sent nothing for this long: the service's rebuild is then tried again, history replay and check exit 1. Only the wait for Bigtable counts, not what the reader does with the rows. 0: reads wait as long as their own deadlines let them." default:"1m"`

	AuditTopic             string `help:"Topic the organization's log sink publishes audit entries to." default:"bq-audit"`
	AuditSubscription      string `help:"Pull subscription of the ingest consumer group on the audit topic; empty for none, in a push-only deployment (setup --push-url, run --no-pull --push-endpoint)." default:"bqobserver-ingest"`
	EventsTopic            string `help:"Topic on which appended job events are published." default:"bqobserver-events"`
	DeadLetterTopic        string `help:"Topic for entries that can never be ingested, with the reason." default:"bq-audit-dead-letter"`
	DeadLetterSubscription string `help:"Subscription that keeps dead-lettered entries for inspection and replay." default:"bq-audit-dead-letter"`

	Retention time.Duration `help:"How long the event log keeps events (Bigtable garbage collection by age; applied by setup and --auto-create)." default:"9600h"`

	HistoryFlags `embed:""`

	ShutdownTimeout time.Duration `help:"Bound on the whole shutdown after SIGTERM or SIGINT (or the end of a simulation): intake stops, entries in flight are handed back to Pub/Sub, HTTP requests finish, writers flush and clients close within it. Cloud Run allows 10s." default:"8s"`
}

// Validate refuses a shutdown with no time to flush or close anything.
// Kong calls it for every command, before it runs.
func (g *Globals) Validate() error {
	if g.ShutdownTimeout <= 0 {
		return fmt.Errorf("--shutdown-timeout must be positive, not %s", g.ShutdownTimeout)
	}
	return nil
}

// logConfig is the event log's configuration, for every command that
// opens it; log hears of the open-jobs index rows it removes.
func (g *Globals) logConfig(log *slog.Logger) events.LogConfig {
	return events.LogConfig{Table: g.BigtableTable, StallTimeout: g.BigtableStallTimeout,
		OnStaleOpenRow: func(rowKey string, err error) {
			log.Warn("an open-jobs index row names a job key the log refuses: no job can be listed under it, so it is removed; its job's events stay in the log",
				"row", rowKey, "error", err.Error())
		}}
}
