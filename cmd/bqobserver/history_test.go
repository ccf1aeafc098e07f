package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/iterator"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/simulation"
	"github.com/bqobserver/bqobserver/internal/testutil/bqtest"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
)

// TestHistoryOn checks where the history goes for each configuration.
func TestHistoryOn(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name    string
		g       Globals
		env     map[string]string
		mode    string
		on      bool
		wantErr bool
	}{
		{"embedded", Globals{}, nil, modeNone, false, false},
		{"the emulator", Globals{}, map[string]string{"BIGQUERY_EMULATOR_HOST": "localhost:9050"}, modeEmulator, true, false},
		{"the emulator, history off", Globals{HistoryFlags: HistoryFlags{History: &no}},
			map[string]string{"BIGQUERY_EMULATOR_HOST": "localhost:9050"}, modeEmulator, false, false},
		{"Google Cloud by --project", Globals{Project: "acme"}, nil, modeCloud, true, false},
		{"--project of the Pub/Sub emulator", Globals{Project: "acme"}, map[string]string{"PUBSUB_EMULATOR_HOST": "localhost:8085"}, modeNone, false, false},
		{"Google Cloud by --bigquery-project", Globals{HistoryFlags: HistoryFlags{BigQueryProject: "acme-obs"}},
			map[string]string{"PUBSUB_EMULATOR_HOST": "localhost:8085"}, modeCloud, true, false},
		{"--history without a backend", Globals{HistoryFlags: HistoryFlags{History: &yes}}, nil, modeNone, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := func(k string) string { return tt.env[k] }
			on, err := historyOn(&tt.g, env)
			if mode := bigQueryMode(&tt.g, env); mode != tt.mode || on != tt.on || (err != nil) != tt.wantErr {
				t.Errorf("mode %s, on %v, error %v; want %s, %v, error %v", mode, on, err, tt.mode, tt.on, tt.wantErr)
			}
		})
	}
}

// TestReportURLCommand prints the Looker Studio link of the history named
// by the flags.
func TestReportURLCommand(t *testing.T) {
	t.Setenv("BIGQUERY_EMULATOR_HOST", "")
	if r := runEnv(t, "", "report-url", "--bigquery-dataset", "jobs_history"); r.code == 0 || !strings.Contains(r.stderr, "no BigQuery history is configured") {
		t.Errorf("report-url with no history: exit %d, want 1 saying there is none\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := runEnv(t, "", "report-url", "--bigquery-project", "acme", "--bigquery-dataset", "jobs_history", "--looker-studio-template", "tmpl-1")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	u, err := url.Parse(strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	got := map[string]string{"reportId": q.Get("c.reportId"), "project": q.Get("ds.ds1.projectId"), "dataset": q.Get("ds.ds1.datasetId"),
		"daily": q.Get("ds.ds0.tableId"), "jobs": q.Get("ds.ds1.tableId")}
	want := map[string]string{"reportId": "tmpl-1", "project": "acme", "dataset": "jobs_history", "daily": "jobs_daily", "jobs": "jobs"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report URL %s (-want +got):\n%s", u, diff)
	}
}

// TestRunWritesHistory runs the embedded service with the BigQuery
// emulator: it creates the history at start, its sink writes the simulated
// jobs there, and the page's links name its report.
func TestRunWritesHistory(t *testing.T) {
	bq := bqtest.New(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("BIGTABLE_EMULATOR_HOST", "")
	base, stop := startService(t, "--simulate-rate", "5", "--bigquery-dataset", bq.Dataset)
	jobs := "`" + bqtest.Project + "." + bq.Dataset + ".jobs`"
	deadline := time.Now().Add(2 * time.Minute)
	for n := 0; n < 5; n = countRows(t, bq, "SELECT COUNT(*) FROM "+jobs+" WHERE state = 'DONE'") {
		if time.Now().After(deadline) {
			t.Fatalf("%d finished jobs in the history after 2 minutes; want 5", n)
		}
		time.Sleep(time.Second)
	}
	var links map[string]string
	if err := json.Unmarshal([]byte(get(t, base+"/api/v1/links")), &links); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(links["history_report"], "ds.ds1.datasetId="+bq.Dataset) || links["history_dataset"] != bqtest.Project+"."+bq.Dataset {
		t.Errorf("links %v do not name the history %s.%s", links, bqtest.Project, bq.Dataset)
	}
	if m := get(t, base+"/metrics"); !strings.Contains(m, `bqobserver_history_events_total{outcome="written"}`) {
		t.Error("the metrics count no history rows written")
	}
	if code := stop(); code != 0 {
		t.Errorf("run exited with %d, want 0", code)
	}
}

func countRows(t *testing.T, bq *bqtest.BigQuery, sql string) int {
	t.Helper()
	it, err := bq.Client.Query(sql).Read(t.Context())
	if err != nil {
		return 0 // the emulator may be busy with the sink's writes; ask again
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil && err != iterator.Done {
		return 0
	}
	if len(row) == 0 {
		return 0
	}
	return int(row[0].(int64))
}

// TestHistoryCommands replays a log held by the Bigtable emulator into the
// BigQuery emulator, checks it, deletes a job's rows behind the sink's back,
// and lets check find it and replay restore it, through the command line.
func TestHistoryCommands(t *testing.T) {
	bq := bqtest.New(t)
	bt := logtest.NewEmulator(t)
	log, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table})
	if err != nil {
		t.Fatal(err)
	}
	// Recent jobs: setup gives the log its retention, which would age out
	// the simulation's default start, in 2025.
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	org, err := simulation.New(simulation.Config{Seed: 2, Rate: 0.2, Projects: 5, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	var evs []events.Event
	for e := range org.Generate(20 * time.Minute) {
		evs = append(evs, e.Meant...)
	}
	if err := log.Append(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"BIGTABLE_EMULATOR_HOST": os.Getenv("BIGTABLE_EMULATOR_HOST"),
		"BIGQUERY_EMULATOR_HOST": bq.REST, "BIGQUERY_STORAGE_EMULATOR_HOST": bq.GRPC}
	run := func(args ...string) cmdResult {
		t.Helper()
		return runWith(t, env, append(args, "--bigtable-instance", logtest.Instance, "--bigtable-project", logtest.Project,
			"--bigtable-table", bt.Table, "--bigquery-dataset", bq.Dataset, "--from", start.Add(-time.Hour).Format(time.RFC3339))...)
	}
	if r := runWith(t, env, "setup", "--bigtable-instance", logtest.Instance, "--bigtable-project", logtest.Project,
		"--bigtable-table", bt.Table, "--bigquery-dataset", bq.Dataset); r.code != 0 {
		t.Fatalf("setup: exit %d\n%s", r.code, r.stderr)
	}
	if r := run("history", "replay"); r.code != 0 || !strings.Contains(r.stdout, "0 refused") || strings.Contains(r.stdout, " 0 versions written") {
		t.Fatalf("replay: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if r := run("history", "check"); r.code != 0 || !strings.Contains(r.stdout, "0 missing, 0 different") {
		t.Fatalf("check after replay: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	gone := evs[len(evs)/2].Job
	if n := countRows(t, bq, fmt.Sprintf("SELECT COUNT(*) FROM `%s.%s.job_versions` WHERE job_id = '%s'", bqtest.Project, bq.Dataset, gone.JobID)); n == 0 {
		t.Fatalf("job %s has no row to delete", gone)
	}
	if _, err := bq.Client.Query(fmt.Sprintf("DELETE FROM `%s.%s.job_versions` WHERE job_id = '%s'", bqtest.Project, bq.Dataset, gone.JobID)).Read(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := run("history", "check")
	if r.code != 1 || !strings.Contains(r.stdout, "missing "+gone.String()+"\n") || !strings.Contains(r.stdout, "1 missing, 0 different") {
		t.Errorf("check after deleting %s: exit %d, want 1 and the job named\n%s", gone, r.code, r.stdout)
	}
	if r := run("history", "replay", "--job-project", gone.Project); r.code != 0 {
		t.Fatalf("replay of %s: exit %d\n%s%s", gone.Project, r.code, r.stdout, r.stderr)
	}
	if r := run("history", "check"); r.code != 0 {
		t.Errorf("check after the second replay: exit %d\n%s", r.code, r.stdout)
	}
}

// runWith runs a command line with env for the emulators' variables.
// commandDeadline bounds one command run by runWith.
const commandDeadline = 5 * time.Minute

func runWith(t *testing.T, env map[string]string, args ...string) cmdResult {
	t.Helper()
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if strings.HasSuffix(k, "_EMULATOR_HOST") {
			return ""
		}
		return os.Getenv(k)
	}
	var out, errOut strings.Builder
	// A command that hangs fails the test with what it printed, rather than
	// the whole package at its timeout.
	ctx, cancel := context.WithTimeout(t.Context(), commandDeadline)
	defer cancel()
	code := runContext(ctx, args, strings.NewReader(""), &out, &errOut, getenv)
	if ctx.Err() != nil && t.Context().Err() == nil {
		t.Fatalf("bqobserver %s did not end within %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), commandDeadline, out.String(), errOut.String())
	}
	return cmdResult{code, out.String(), errOut.String()}
}

// TestHistoryCommandsOnHangingBigtable runs replay and check on a Bigtable
// whose reads do not answer: each gives up after --bigtable-stall-timeout and exits
// 1, saying so, instead of waiting until it is interrupted (a script would
// wait for ever). BigQuery is never reached: the range is read first.
func TestHistoryCommandsOnHangingBigtable(t *testing.T) {
	bt, ps := commandOnHangingBigtable(t)
	bt.hangReads.Store(true)
	env := map[string]string{"BIGTABLE_EMULATOR_HOST": bt.addr, "PUBSUB_EMULATOR_HOST": ps,
		"BIGQUERY_EMULATOR_HOST": "127.0.0.1:1", "BIGQUERY_STORAGE_EMULATOR_HOST": "127.0.0.1:1"}
	for _, cmd := range []string{"replay", "check"} {
		start := time.Now()
		r := runWith(t, env, "history", cmd, "--project", "hanging", "--bigquery-dataset", "history", "--bigtable-stall-timeout", "500ms",
			"--from", time.Now().Add(-time.Hour).Format(time.RFC3339))
		took := time.Since(start)
		if r.code != 1 || !strings.Contains(r.stderr, "Bigtable sent nothing for 500ms") {
			t.Errorf("history %s on a hanging Bigtable: exit %d, want 1 and the stall named\nstdout: %s\nstderr: %s", cmd, r.code, r.stdout, r.stderr)
		}
		if took > 10*time.Second {
			t.Errorf("history %s on a hanging Bigtable took %s, want about its stall timeout of 500ms", cmd, took)
		}
	}
	if bt.calls.Load() == 0 {
		t.Error("no read reached the hanging Bigtable")
	}
}

// TestHistoryCommandsNeedOnlyTheLog: the history's commands read the event
// log and BigQuery, and need no Pub/Sub: a Bigtable on Google Cloud without
// --project is no mix to refuse; an in-process Bigtable, an empty log, is.
func TestHistoryCommandsNeedOnlyTheLog(t *testing.T) {
	env := map[string]string{"BIGQUERY_EMULATOR_HOST": "127.0.0.1:1", "BIGQUERY_STORAGE_EMULATOR_HOST": "127.0.0.1:1"}
	r := runWith(t, env, "history", "check", "--from", "2026-12-01T00:00:00Z")
	if r.code == 0 || !strings.Contains(r.stderr, "the history's commands read the event log") {
		t.Errorf("history check on an in-process Bigtable: exit %d\n%s", r.code, r.stderr)
	}
	r = runWith(t, env, "history", "check", "--from", "2026-12-01T00:00:00Z", "--bigtable-instance", "bqobserver", "--bigtable-project", "acme-observer")
	if strings.Contains(r.stderr, "no Pub/Sub is configured") {
		t.Errorf("history check refused for want of a Pub/Sub it does not use:\n%s", r.stderr)
	}
}
