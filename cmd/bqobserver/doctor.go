package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"cloud.google.com/go/bigtable"
	"cloud.google.com/go/pubsub/v2"

	"github.com/bqobserver/bqobserver/enrich/jobsapi"
	"github.com/bqobserver/bqobserver/enrich/registry"
)

// DoctorCmd checks every dependency the service uses, with the service's
// own identity, and says what works, what does not and the grant or the
// step that fixes it.
type DoctorCmd struct {
	BigqueryEndpoint string   `name:"bigquery-endpoint" help:"Base URL of the BigQuery jobs API to check (default: Google's when a backend is Google Cloud; none otherwise)."`
	Projects         []string `help:"Projects whose jobs API to check (default: a sample of those that had jobs in the last 30 days)." sep:","`
	Sample           int      `help:"How many of the recently active projects to check when --projects is not given (1 or more)." default:"10"`
	PushSubscription string   `help:"Push subscription of the audit topic to check (setup --push-url makes bqobserver-push); needed when --audit-subscription is empty, in a push-only deployment."`
}

// Validate refuses a sample of no project.
func (c *DoctorCmd) Validate() error {
	if c.Sample < 1 {
		return fmt.Errorf("--sample must be 1 or more, not %d", c.Sample)
	}
	return nil
}

// check is one line of the doctor's table.
type check struct {
	Area, Resource string
	Status         string // statusOK, statusBroken or statusSkipped
	// Detail says what was seen; Fix, for a broken dependency, what to do.
	Detail, Fix string
}

const (
	statusOK      = "ok"
	statusBroken  = "BROKEN"
	statusSkipped = "skipped"
)

// Run checks, prints the table, and exits 1 if anything is broken.
func (c *DoctorCmd) Run(g *Globals, e *env) error {
	b, err := openBackends(e.ctx, g, e.getenv, e.log)
	if err != nil {
		return err
	}
	defer b.Close()
	if b.PubSubMode == modeEmbedded && b.BigtableMode == modeEmbedded {
		fmt.Fprintln(e.stdout, "nothing to check: no backend is configured, so the service runs on in-process stand-ins it sets up itself; "+
			"set --project and --bigtable-instance (or PUBSUB_EMULATOR_HOST and BIGTABLE_EMULATOR_HOST) to check them")
		return nil
	}
	d := &doctor{g: g, ps: b.PubSub, project: b.PubSubProject, bt: b.Bigtable, admin: b.BigtableAdmin,
		projects: c.Projects, sample: c.Sample, push: c.PushSubscription, storageEmulator: e.getenv("BIGQUERY_STORAGE_EMULATOR_HOST"),
		inProcess: map[string]bool{"Pub/Sub": b.PubSubMode == modeEmbedded, "Bigtable": b.BigtableMode == modeEmbedded}}
	endpoint := c.BigqueryEndpoint
	if endpoint != "" || b.PubSubMode == modeCloud || b.BigtableMode == modeCloud {
		if d.api, err = jobsapi.New(e.ctx, jobsapi.Config{Attempts: 2}, nil, jobsAPIOptions(endpoint)...); err != nil {
			return err
		}
	}
	if d.reg, err = registry.New(b.Bigtable, g.BigtableTable); err != nil {
		return err
	}
	if d.historyOn, err = historyOn(g, e.getenv); err != nil {
		return err
	}
	if d.historyOn {
		if d.history, err = openBigQuery(e.ctx, g, e.getenv, false, e.log); err != nil {
			return err
		}
		defer d.history.Close()
	}
	ctx, cancel := context.WithTimeout(e.ctx, 2*time.Minute)
	defer cancel()
	checks := d.run(ctx)
	printChecks(e.stdout, checks)
	if slices.ContainsFunc(checks, func(c check) bool { return c.Status == statusBroken }) {
		return errExit
	}
	return nil
}

// doctor holds the clients the checks use, as the service would make them.
type doctor struct {
	g       *Globals
	ps      *pubsub.Client
	project string
	bt      *bigtable.Client
	admin   *bigtable.AdminClient
	// api is nil when there is no jobs API to check.
	api      *jobsapi.Client
	reg      *registry.Registry
	projects []string
	sample   int
	// push is the push subscription to check, if any.
	push string
	// inProcess says which backends (by area) are in-process stand-ins,
	// which there is nothing to check of.
	inProcess map[string]bool
	// historyOn says whether the service writes the BigQuery history, in
	// history (nil when it does not).
	historyOn bool
	history   *bigQueryBackend
	// storageEmulator is BIGQUERY_STORAGE_EMULATOR_HOST.
	storageEmulator string
}

// run makes every check, in the order of the data flow.
func (d *doctor) run(ctx context.Context) []check {
	var out []check
	out = append(out, d.pubsubChecks(ctx)...)
	out = append(out, d.bigtableChecks(ctx)...)
	out = append(out, d.jobsAPIChecks(ctx)...)
	return append(out, d.historyChecks(ctx)...)
}

// printChecks writes the table, one dependency a line, and what to do
// under each broken one.
func printChecks(w io.Writer, checks []check) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "AREA\tRESOURCE\tSTATUS\tDETAIL")
	broken := 0
	for _, c := range checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Area, c.Resource, c.Status, oneLine(c.Detail))
		if c.Status == statusBroken {
			broken++
			fmt.Fprintf(tw, "\t\t\tfix: %s\n", oneLine(c.Fix))
		}
	}
	tw.Flush()
	if broken == 0 {
		fmt.Fprintln(w, "\neverything the service needs works")
		return
	}
	fmt.Fprintf(w, "\n%d of %d checks found something broken\n", broken, len(checks))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
