package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/schollz/progressbar/v3"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/projections/history"
)

// HistoryCmd rebuilds and checks the job history in BigQuery from the event
// log, the source of truth.
type HistoryCmd struct {
	Replay HistoryReplayCmd `cmd:"" help:"Write the current version of every job of a time range of the event log to the BigQuery history (idempotent)."`
	Check  HistoryCheckCmd  `cmd:"" help:"Compare a time range of the event log with the BigQuery history's jobs view; print the jobs missing or different there, and exit 1 if there are any."`
}

// historyRange is a range of the event log, and which jobs of it.
type historyRange struct {
	From       time.Time `required:"" help:"Start of the range, RFC 3339: jobs with an event at or after it."`
	To         time.Time `help:"End of the range, RFC 3339: jobs with an event before it (default: now)."`
	JobProject string    `name:"job-project" help:"Only the jobs of this project (--project names the service's own)."`
}

func (r *historyRange) resolve(now time.Time) error {
	if r.To.IsZero() {
		r.To = now
	}
	if !r.From.Before(r.To) {
		return fmt.Errorf("--from %s is not before --to %s", r.From.Format(time.RFC3339), r.To.Format(time.RFC3339))
	}
	return nil
}

// open resolves the range and connects to the event log, as the service
// would, and to the history's BigQuery (with its Storage Write API when
// write is set); closeAll closes both.
func (r *historyRange) open(e *env, g *Globals, write bool) (log *events.Log, hb *bigQueryBackend, closeAll func() error, err error) {
	if err := r.resolve(time.Now()); err != nil {
		return nil, nil, nil, err
	}
	// The event log alone: the history's commands need no Pub/Sub, and an
	// in-process Bigtable would be an empty log.
	if bigtableMode(g, e.getenv) == modeEmbedded {
		return nil, nil, nil, errors.New("the history's commands read the event log: set --bigtable-instance (BQOBSERVER_BIGTABLE_INSTANCE) or BIGTABLE_EMULATOR_HOST")
	}
	b := &backends{}
	if err := b.openBigtable(e.ctx, g, e.getenv); err != nil {
		return nil, nil, nil, errors.Join(err, b.Close())
	}
	if log, err = events.NewLog(b.Bigtable, g.logConfig(e.log)); err == nil {
		hb, err = openBigQuery(e.ctx, g, e.getenv, write, e.log)
	}
	if err != nil {
		return nil, nil, nil, errors.Join(err, b.Close())
	}
	return log, hb, func() error { return errors.Join(hb.Close(), b.Close()) }, nil
}

// HistoryReplayCmd writes the current version of every job of a range of
// the log.
type HistoryReplayCmd struct {
	historyRange
}

// Run replays the range, with a progress bar on standard error and a
// summary on standard output. It exits 1 if BigQuery refused a version.
func (c *HistoryReplayCmd) Run(g *Globals, e *env) error {
	log, hb, closeAll, err := c.open(e, g, true)
	if err != nil {
		return err
	}
	defer closeAll()
	sink, err := history.New(history.Config{}, log, history.Destination{Client: hb.Write, BigQuery: hb.Schema}, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	var bar *progressbar.ProgressBar // made once the number of jobs is known
	start := time.Now()
	stats, err := sink.Replay(e.ctx, history.ReplayOptions{From: c.From, To: c.To, Project: c.JobProject,
		Progress: func(done, total int) {
			if bar == nil {
				bar = replayBar(e.stderr, total)
			}
			_ = bar.Set(done) // the bar is decoration
		}})
	if bar != nil {
		_ = bar.Finish()
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), g.ShutdownTimeout)
	defer cancel()
	err = errors.Join(err, sink.Close(closeCtx))
	writeReplaySummary(e.stdout, c.historyRange, stats, time.Since(start), hb.Schema.Project+"."+hb.Schema.Dataset)
	if err != nil {
		return err
	}
	if len(stats.Rejected) > 0 {
		return errExit
	}
	return nil
}

// replayBar counts the jobs replayed out of total, with their rate.
func replayBar(w io.Writer, total int) *progressbar.ProgressBar {
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("replaying"),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("jobs"),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }))
}

func writeReplaySummary(w io.Writer, r historyRange, s history.ReplayStats, took time.Duration, dataset string) {
	rate := 0.0
	if took > 0 {
		rate = float64(s.Written) / took.Seconds()
	}
	fmt.Fprintf(w, "replayed %s to %s into %s: %d events of %d jobs, %d versions written, %d refused, in %s (%.0f versions/s)\n",
		r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), dataset, s.Events, s.Jobs, s.Written, len(s.Rejected),
		took.Round(time.Millisecond), rate)
	for _, rj := range s.Rejected {
		fmt.Fprintf(w, "refused %s: %v\n", rj.Job, rj.Err)
	}
}

// HistoryCheckCmd compares the log with the jobs view.
type HistoryCheckCmd struct {
	historyRange
}

// Run prints one line per job missing or different in BigQuery, then a
// summary, on standard output, and exits 1 if there are any.
func (c *HistoryCheckCmd) Run(g *Globals, e *env) error {
	log, hb, closeAll, err := c.open(e, g, false)
	if err != nil {
		return err
	}
	defer closeAll()
	checker, err := history.NewChecker(history.Config{}, log, history.NewJobsView(hb.Client, hb.Schema))
	if err != nil {
		return err
	}
	stats, diffs, err := checker.Check(e.ctx, c.From, c.To, c.JobProject)
	if err != nil {
		return err
	}
	for _, d := range diffs {
		fmt.Fprintln(e.stdout, describeDifference(d))
	}
	fmt.Fprintf(e.stdout, "checked %d jobs of %s to %s against %s.%s: %d missing, %d different\n", stats.Jobs,
		c.From.Format(time.RFC3339), c.To.Format(time.RFC3339), hb.Schema.Project, hb.Schema.Dataset, stats.Missing, stats.Different)
	if len(diffs) > 0 {
		return errExit
	}
	return nil
}

// describeDifference writes a job's difference on one line.
func describeDifference(d history.Difference) string {
	if d.Missing {
		return "missing " + d.Job.String()
	}
	cols := make([]string, len(d.Columns))
	for i, c := range d.Columns {
		cols[i] = fmt.Sprintf("%s (log %s, BigQuery %s)", c.Column, shortValue(c.Log), shortValue(c.BigQuery))
	}
	return "different " + d.Job.String() + ": " + strings.Join(cols, ", ")
}

// shortValue prints a column's value on at most 60 characters.
func shortValue(v any) string {
	s := fmt.Sprint(v)
	if v == nil {
		s = "NULL"
	}
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// ReportURLCmd prints the Looker Studio link of the history.
type ReportURLCmd struct{}

// Run prints a Looker Studio Linking API URL that opens the report on the
// history's project and dataset.
func (c *ReportURLCmd) Run(g *Globals, e *env) error {
	b := historySchema(g)
	if err := b.Validate(); err != nil {
		return err
	}
	if bigQueryMode(g, e.getenv) == modeNone {
		// Without --bigquery-project or --project the link would name the
		// embedded mode's placeholder project, where no report can read.
		return errors.New("no BigQuery history is configured: give --bigquery-project (or --project) and --bigquery-dataset, as the service that writes the history has them")
	}
	fmt.Fprintln(e.stdout, history.LookerStudioURL(b, g.LookerStudioTemplate))
	return nil
}
