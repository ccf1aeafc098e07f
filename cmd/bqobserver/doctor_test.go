package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/api/option"

	"github.com/bqobserver/bqobserver/enrich/jobsapi"
	"github.com/bqobserver/bqobserver/enrich/registry"
	"github.com/bqobserver/bqobserver/internal/simulation"
	"github.com/bqobserver/bqobserver/internal/testutil/bqtest"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/internal/testutil/pubsubtest"
	"github.com/bqobserver/bqobserver/schema"
)

// doctorFixture is a deployment for the doctor: Pub/Sub (pstest or the
// emulator) and Bigtable (bttest or the emulator) set up by the schema,
// and a simulated organization's jobs API.
type doctorFixture struct {
	d   *doctor
	org *simulation.Org
	bt  *logtest.Bigtable
}

func newDoctorFixture(t *testing.T) *doctorFixture {
	t.Helper()
	ps := pubsubtest.New(t)
	g := &Globals{BigtableTable: "", AuditTopic: "bq-audit", AuditSubscription: "bqobserver-ingest", EventsTopic: "bqobserver-events",
		DeadLetterTopic: "bq-audit-dead-letter", DeadLetterSubscription: "bq-audit-dead-letter"}
	if err := schema.ApplyPubSub(t.Context(), ps.Client, topology(g, ps.Project)); err != nil {
		t.Fatal(err)
	}
	bt := logtest.NewBigtable(t)
	g.BigtableTable = bt.Table
	org, err := simulation.New(simulation.Config{Seed: 3, Projects: 4, Rate: 2, DurationScale: 20})
	if err != nil {
		t.Fatal(err)
	}
	for range org.Generate(5 * time.Minute) {
	}
	srv := httptest.NewServer(org.JobsAPI())
	t.Cleanup(srv.Close)
	api, err := jobsapi.New(t.Context(), jobsapi.Config{Endpoint: srv.URL + "/bigquery/v2/", Attempts: 1}, nil, option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(bt.Client, bt.Table)
	if err != nil {
		t.Fatal(err)
	}
	d := &doctor{g: g, ps: ps.Client, project: ps.Project, bt: bt.Client, admin: bt.Admin, api: api, reg: reg, sample: 10}
	return &doctorFixture{d: d, org: org, bt: bt}
}

// outcome is what a check found, without the words that vary.
type outcome struct {
	Area, Resource, Status, Fix string
}

func outcomes(cs []check) []outcome {
	var out []outcome
	for _, c := range cs {
		out = append(out, outcome{c.Area, c.Resource, c.Status, c.Fix})
	}
	return out
}

// healthy is what the doctor finds in a fixture where everything works,
// for projects p.
func healthy(f *doctorFixture, projects ...string) []outcome {
	g := f.d.g
	out := []outcome{
		{"Pub/Sub", "topic " + g.AuditTopic, statusOK, ""},
		{"Pub/Sub", "subscription " + g.AuditSubscription, statusOK, ""},
		{"Pub/Sub", "topic " + g.EventsTopic, statusOK, ""},
		{"Pub/Sub", "topic " + g.DeadLetterTopic, statusOK, ""},
		{"Pub/Sub", "subscription " + g.DeadLetterSubscription, statusOK, ""},
		{"Bigtable", "table " + g.BigtableTable, statusOK, ""},
		{"Bigtable", "families of " + g.BigtableTable, statusOK, ""},
	}
	for _, p := range projects {
		out = append(out, outcome{"BigQuery jobs API", "jobs.list " + p, statusOK, ""}, outcome{"BigQuery jobs API", "jobs.get " + p, statusOK, ""})
	}
	return append(out, outcome{"BigQuery", "history", statusSkipped, ""})
}

func TestDoctor(t *testing.T) {
	for _, tc := range []struct {
		name   string
		breaks func(t *testing.T, f *doctorFixture, projects []string)
		want   func(f *doctorFixture, projects []string) []outcome
	}{
		{"healthy", func(*testing.T, *doctorFixture, []string) {}, func(f *doctorFixture, ps []string) []outcome { return healthy(f, ps...) }},
		{"a subscription missing", func(t *testing.T, f *doctorFixture, _ []string) {
			err := f.d.ps.SubscriptionAdminClient.DeleteSubscription(t.Context(), &pubsubpb.DeleteSubscriptionRequest{
				Subscription: "projects/" + f.d.project + "/subscriptions/" + f.d.g.DeadLetterSubscription})
			if err != nil {
				t.Fatal(err)
			}
		}, func(f *doctorFixture, ps []string) []outcome {
			out := healthy(f, ps...)
			out[4] = outcome{"Pub/Sub", "subscription " + f.d.g.DeadLetterSubscription, statusBroken, fixSetup}
			return out
		}},
		{"a subscription on another topic", func(t *testing.T, f *doctorFixture, _ []string) {
			sub := "projects/" + f.d.project + "/subscriptions/" + f.d.g.DeadLetterSubscription
			if err := f.d.ps.SubscriptionAdminClient.DeleteSubscription(t.Context(), &pubsubpb.DeleteSubscriptionRequest{Subscription: sub}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.d.ps.SubscriptionAdminClient.CreateSubscription(t.Context(), &pubsubpb.Subscription{Name: sub,
				Topic: "projects/" + f.d.project + "/topics/" + f.d.g.EventsTopic}); err != nil {
				t.Fatal(err)
			}
		}, func(f *doctorFixture, ps []string) []outcome {
			out := healthy(f, ps...)
			out[4] = outcome{"Pub/Sub", "subscription " + f.d.g.DeadLetterSubscription, statusBroken,
				"recreate the subscription attached to topic " + f.d.g.DeadLetterTopic + ": once it is drained, delete it and " + fixSetup}
			return out
		}},
		{"a family missing", func(t *testing.T, f *doctorFixture, _ []string) {
			if err := f.bt.Admin.DeleteColumnFamily(t.Context(), f.bt.Table, "l"); err != nil {
				t.Fatal(err)
			}
		}, func(f *doctorFixture, ps []string) []outcome {
			out := healthy(f, ps...)
			out[5] = outcome{"Bigtable", "table " + f.d.g.BigtableTable, statusSkipped, ""}
			out[6] = outcome{"Bigtable", "families of " + f.d.g.BigtableTable, statusBroken, fixSetup}
			return out
		}},
		{"a project denies listing, another reading", func(t *testing.T, f *doctorFixture, ps []string) {
			f.org.JobsAPI().DenyMethod(ps[0], simulation.MethodList, true)
			f.org.JobsAPI().DenyMethod(ps[1], simulation.MethodGet, true)
		}, func(f *doctorFixture, ps []string) []outcome {
			out := healthy(f, ps...)
			out[7].Status, out[7].Fix = statusBroken, jobsapi.Fix(ps[0])
			out[10].Status, out[10].Fix = statusBroken, jobsapi.Fix(ps[1])
			return out
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newDoctorFixture(t)
			projects := slices.Sorted(slices.Values(f.org.Projects()[:2]))
			if err := f.d.reg.Touch(t.Context(), projects, time.Now()); err != nil {
				t.Fatal(err)
			}
			tc.breaks(t, f, projects)
			got := f.d.run(t.Context())
			want := tc.want(f, projects)
			if diff := cmp.Diff(outcomes(got), want, cmpopts.EquateEmpty()); diff != "" {
				var b bytes.Buffer
				printChecks(&b, got)
				t.Errorf("checks (-got +want):\n%s\n%s", diff, b.String())
			}
		})
	}
}

// TestDoctorHistory checks the BigQuery history on the emulator: its
// subscription and dataset missing before setup, and everything as setup
// leaves it after.
func TestDoctorHistory(t *testing.T) {
	bq := bqtest.New(t)
	f := newDoctorFixture(t)
	g := f.d.g
	g.HistorySubscription = "bqobserver-history"
	f.d.historyOn = true
	f.d.history = &bigQueryBackend{Mode: modeEmulator, Client: bq.Client,
		Schema: schema.BigQuery{Project: bqtest.Project, Dataset: bq.Dataset, Location: "US"}}
	f.d.storageEmulator = "127.0.0.1:9060"
	dataset := "dataset " + bqtest.Project + "." + bq.Dataset
	before := []outcome{
		{"Pub/Sub", "subscription " + g.HistorySubscription, statusBroken, fixSetup},
		{"BigQuery", dataset, statusBroken, fixSetup},
		{"BigQuery", "Storage Write API", statusOK, ""},
	}
	if diff := cmp.Diff(historyOutcomes(f.d.run(t.Context())), before); diff != "" {
		t.Errorf("before setup (-got +want):\n%s", diff)
	}
	top := topology(g, f.d.project)
	top.HistorySubscription = g.HistorySubscription
	if err := schema.ApplyPubSub(t.Context(), f.d.ps, top); err != nil {
		t.Fatal(err)
	}
	if err := schema.ApplyBigQuery(t.Context(), bq.Client, f.d.history.Schema); err != nil {
		t.Fatal(err)
	}
	after := []outcome{
		{"Pub/Sub", "subscription " + g.HistorySubscription, statusOK, ""},
		{"BigQuery", dataset, statusOK, ""},
		{"BigQuery", "table " + schema.JobVersionsTable, statusOK, ""},
		{"BigQuery", "view " + schema.JobsView, statusOK, ""},
		{"BigQuery", "view " + schema.JobsRunningView, statusOK, ""},
		{"BigQuery", "view " + schema.JobsDailyView, statusOK, ""},
		{"BigQuery", "Storage Write API", statusOK, ""},
	}
	if diff := cmp.Diff(historyOutcomes(f.d.run(t.Context())), after); diff != "" {
		t.Errorf("after setup (-got +want):\n%s", diff)
	}
}

// TestDoctorStorageEmulator: with the BigQuery emulator, the history is
// written through its Storage Write API, which run refuses to start
// without; the doctor says so rather than passing.
func TestDoctorStorageEmulator(t *testing.T) {
	for addr, want := range map[string]string{"": statusBroken, "127.0.0.1:9060": statusOK} {
		if c := (&doctor{storageEmulator: addr}).storageEmulatorCheck(); c.Status != want || (want == statusBroken) != (c.Fix != "") {
			t.Errorf("BIGQUERY_STORAGE_EMULATOR_HOST=%q: %+v, want %s", addr, c, want)
		}
	}
}

// historyOutcomes are the outcomes of the history's checks: its
// subscription's and BigQuery's.
func historyOutcomes(cs []check) []outcome {
	var out []outcome
	for _, o := range outcomes(cs) {
		if o.Area == "BigQuery" || strings.Contains(o.Resource, "history") {
			out = append(out, o)
		}
	}
	return out
}

// TestDoctorTable prints every check and the fix under each broken one.
func TestDoctorTable(t *testing.T) {
	var b bytes.Buffer
	printChecks(&b, []check{
		{Area: "Pub/Sub", Resource: "topic a", Status: statusOK, Detail: "exists"},
		{Area: "BigQuery jobs API", Resource: "jobs.list p", Status: statusBroken, Detail: "missing bigquery.jobs.listAll", Fix: jobsapi.Fix("p")},
	})
	out := b.String()
	for _, want := range []string{"AREA", "topic a", "BROKEN", "fix: Grant roles/bigquery.resourceViewer", "1 of 2 checks found something broken"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
}

// TestDoctorEmbedded: with no backend configured there is nothing to check.
func TestDoctorEmbedded(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("BIGTABLE_EMULATOR_HOST", "")
	var out bytes.Buffer
	code := runContext(context.Background(), []string{"doctor"}, strings.NewReader(""), &out, &out, func(k string) string { return "" })
	if code != 0 || !strings.Contains(out.String(), "nothing to check") {
		t.Errorf("exit %d:\n%s", code, out.String())
	}
}

// TestDoctorPush checks the push subscription of a push-only deployment:
// named, it must exist on the audit topic with an endpoint; unnamed while
// no pull subscription is checked either, nothing receives the entries.
func TestDoctorPush(t *testing.T) {
	for _, tc := range []struct {
		name     string
		push     string
		endpoint string // "" for a pull subscription; "-" for none made
		want     outcome
	}{
		{"pushing", "bqobserver-push", "https://bqobserver.example/push/audit", outcome{"Pub/Sub", "subscription bqobserver-push", statusOK, ""}},
		{"pulled", "bqobserver-push", "", outcome{"Pub/Sub", "subscription bqobserver-push", statusBroken, "run `bqobserver setup --push-url … --push-subscription bqobserver-push`"}},
		{"missing", "bqobserver-push", "-", outcome{"Pub/Sub", "subscription bqobserver-push", statusBroken, fixSetup}},
		{"not named", "", "-", outcome{"Pub/Sub", "audit topic's subscriptions", statusBroken, "name the push subscription with --push-subscription (setup --push-url makes bqobserver-push)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newDoctorFixture(t)
			f.d.g.AuditSubscription, f.d.push = "", tc.push
			if tc.endpoint != "-" {
				sub := &pubsubpb.Subscription{Name: "projects/" + f.d.project + "/subscriptions/bqobserver-push", Topic: "projects/" + f.d.project + "/topics/" + f.d.g.AuditTopic}
				if tc.endpoint != "" {
					sub.PushConfig = &pubsubpb.PushConfig{PushEndpoint: tc.endpoint}
				}
				if _, err := f.d.ps.SubscriptionAdminClient.CreateSubscription(t.Context(), sub); err != nil {
					t.Fatal(err)
				}
			}
			got := outcomes(f.d.pubsubChecks(t.Context()))
			if !slices.Contains(got, tc.want) {
				t.Errorf("checks %v, want among them %v", got, tc.want)
			}
			if slices.ContainsFunc(got, func(o outcome) bool { return o.Resource == "subscription bqobserver-ingest" }) {
				t.Errorf("checks %v name the pull subscription of a push-only deployment", got)
			}
		})
	}
}

// TestDoctorInProcessBigtable: with Pub/Sub configured but no Bigtable,
// the doctor checks Pub/Sub and says there is no Bigtable to check,
// instead of reporting the in-process one broken (setup cannot fix that).
func TestDoctorInProcessBigtable(t *testing.T) {
	project, _ := pubsubEnv(t)
	t.Setenv("BIGTABLE_EMULATOR_HOST", "")
	if r := runEnv(t, "", "setup", "--project", project); r.code != 0 || !strings.Contains(r.stderr, "Bigtable not set up") || strings.Contains(r.stdout, "table bqobserver-events") {
		t.Fatalf("setup: exit %d, want 0, saying Bigtable was not set up\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r := runEnv(t, "", "doctor", "--project", project)
	if r.code != 0 || !strings.Contains(r.stdout, "Bigtable") || strings.Contains(r.stdout, statusBroken) {
		t.Errorf("doctor: exit %d, want 0 with Bigtable skipped\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestDoctorSample refuses a sample of no project.
func TestDoctorSample(t *testing.T) {
	for _, n := range []string{"0", "-1"} {
		if r := runEnv(t, "", "doctor", "--sample="+n); r.code == 0 || !strings.Contains(r.stderr, "--sample must be 1 or more") {
			t.Errorf("doctor --sample %s: exit %d\n%s", n, r.code, r.stderr)
		}
	}
}

// TestCloudBackendBesideInProcess refuses Google Cloud for one backend and
// an in-process stand-in for the other, in every command: a deployment
// that forgot --bigtable-instance would keep its log in memory.
func TestCloudBackendBesideInProcess(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("BIGTABLE_EMULATOR_HOST", "")
	for _, args := range [][]string{
		{"run", "--project", "acme-observer"},
		{"setup", "--project", "acme-observer"},
		{"doctor", "--project", "acme-observer"},
		{"run", "--bigtable-instance", "bqobserver"},
	} {
		r := runEnv(t, "", args...)
		if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "is Google Cloud's") {
			t.Errorf("%v: exit %d, want a refusal naming the backend that is not configured\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
}
