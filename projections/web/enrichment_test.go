package web

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/browser"
	"github.com/bqobserver/bqobserver/projections/running"
)

// apiStandIn stands in for enrichment and the BigQuery jobs API behind
// it: two projects deny a permission, and every job has the same plan.
type apiStandIn struct{ at time.Time }

func (a apiStandIn) Live(context.Context, events.JobKey) (*running.Live, error) {
	return &running.Live{ObservedAt: a.at, State: "RUNNING",
		Stages: []running.Stage{
			{ID: 0, Name: "S00: Input", Status: "COMPLETE", ParallelInputs: events.Int64(40), CompletedParallelInputs: events.Int64(40), RecordsRead: events.Int64(1_200_000), RecordsWritten: events.Int64(0), SlotMs: events.Int64(9000),
				StartTime: a.at.Add(-time.Minute), EndTime: a.at.Add(-30 * time.Second), WaitRatioAvg: 0.05, WaitRatioMax: 0.2, ComputeRatioAvg: 0.4, ComputeRatioMax: 0.9},
			{ID: 1, Name: "S01: Aggregate+", Status: "RUNNING", InputStages: []int64{0}, ParallelInputs: events.Int64(20), CompletedParallelInputs: events.Int64(5),
				RecordsRead: events.Int64(30_000), SlotMs: events.Int64(2500), StartTime: a.at.Add(-30 * time.Second)},
		},
		Timeline: []running.TimelineSample{{ElapsedMs: 10_000, SlotMs: 2000, CompletedUnits: 10, ActiveUnits: 5, PendingUnits: 45},
			{ElapsedMs: 60_000, SlotMs: 11_500, CompletedUnits: 45, ActiveUnits: 5, PendingUnits: 15}},
	}, nil
}

func (a apiStandIn) Diagnostics(context.Context) (*running.Diagnostics, error) {
	p := func(project, method, perm string) running.Problem {
		return running.Problem{Project: project, Method: method, Permission: perm, Role: "roles/bigquery.resourceViewer",
			Fix: "Grant roles/bigquery.resourceViewer on project " + project + ".", Message: "Access Denied: Project " + project,
			Since: a.at, Checked: a.at}
	}
	return &running.Diagnostics{Enrichment: true, CheckedAt: a.at, Problems: []running.Problem{
		p("acme-finance-prod", "jobs.list", "bigquery.jobs.listAll"), p("acme-hr-prod", "jobs.get", "bigquery.jobs.get"),
	}}, nil
}

// TestEnrichmentInBrowser: the page shows a banner naming the projects
// the service cannot see into and the grant, and a job's detail shows its
// query stages with their progress.
func TestEnrichmentInBrowser(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, 30)
	o.proj.AttachEnrichment(apiStandIn{at: time.Now()})
	b := startBrowser(t)
	b.Run(t, "loading the page", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(o.URL()))
	b.Until(t, "waiting for the banner", `!document.querySelector("#diagnostics").hidden`, waitFor)
	var banner string
	b.Eval(t, `document.querySelector("#diagnostics").textContent`, &banner)
	for _, want := range []string{"2 projects", "roles/bigquery.resourceViewer", "acme-finance-prod", "bigquery.jobs.listAll", "acme-hr-prod", "bigquery.jobs.get"} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner does not say %q: %s", want, banner)
		}
	}
	id := o.seeded[0]
	b.Run(t, "opening a job", chromedp.Navigate(o.URL()+"?job="+url.QueryEscape(id)))
	b.Until(t, "waiting for the stages", `document.querySelectorAll("#detail .stage").length === 2`, waitFor)
	var bars []string
	b.Eval(t, `[...document.querySelectorAll("#detail .stage [role=progressbar]")].map(e => e.getAttribute("aria-valuenow"))`, &bars)
	if got := fmt.Sprint(bars); got != "[100 25]" {
		t.Errorf("stage progress %s, want [100 25]", got)
	}
	// The second stage's records written were left out (as when BigQuery's
	// count cannot be true): its records are not shown, the rest is.
	var facts []string
	b.Eval(t, `[...document.querySelectorAll("#detail .stage-facts")].map(e => e.textContent)`, &facts)
	if len(facts) != 2 || !strings.Contains(facts[0], "1.20M records read, 0 written") || strings.Contains(facts[1], "records") ||
		!strings.Contains(facts[1], "2,500 slot-ms") || !strings.Contains(facts[1], "5 of 20 inputs") {
		t.Errorf("stage facts %q, want the first stage's records, and the second's inputs and slot-ms without records", facts)
	}
	var caption string
	b.Eval(t, `document.querySelector("#detail .stages-timeline figcaption").textContent`, &caption)
	if !strings.Contains(caption, "45 units done") {
		t.Errorf("timeline caption %q", caption)
	}
	b.Screenshot(t, "stages")
}
