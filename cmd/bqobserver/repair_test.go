package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigtable"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bqobserver/bqobserver/internal/bttest"
	"github.com/bqobserver/bqobserver/internal/pstest"
	"github.com/bqobserver/bqobserver/internal/simulation"
	"github.com/bqobserver/bqobserver/internal/testutil/envtest"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/internal/testutil/pubsubtest"
)

// metricSum sums every series of the metric name on the service's
// /metrics.
func metricSum(t *testing.T, base, name string) float64 {
	t.Helper()
	sum := 0.0
	for _, line := range strings.Split(get(t, base+"/metrics"), "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// waitMetric waits up to limit for the metric name to reach at least min.
func waitMetric(t *testing.T, base, name string, min float64, limit time.Duration) float64 {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		v := metricSum(t, base, name)
		if v >= min {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %g after %s, want at least %g", name, v, limit, min)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const appended = "bqobserver_appender_appended_events_total"

// localAdmin is an admin client of the Bigtable at addr.
func localAdmin(t *testing.T, addr string) *bigtable.AdminClient {
	t.Helper()
	a, err := bigtable.NewAdminClient(t.Context(), localProject, localInstance, localOptions(addr)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// TestRepairLostTable deletes the event log's table under the running
// service (fed by the embedded simulation): the service creates it again
// and appends go on, without a restart.
func TestRepairLostTable(t *testing.T) {
	addr := logtest.StartBttest(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("BIGTABLE_EMULATOR_HOST", addr)
	base, stop := startService(t, "--simulate-rate", "20", "--repair-interval", "200ms")
	defer stop()
	before := waitMetric(t, base, appended, 50, time.Minute)
	if err := localAdmin(t, addr).DeleteTable(t.Context(), "bqobserver-events"); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, base, "bqobserver_recreated_resources_total", 1, time.Minute)
	waitMetric(t, base, appended, before+200, 2*time.Minute)
	if got := metricSum(t, base, "bqobserver_missing_resources"); got != 0 {
		t.Errorf("missing resources after the repair: %g, want 0", got)
	}
}

// TestRepairBigtableRestartedEmpty stops the in-process Bigtable under the
// running service (fed by the embedded simulation) and starts an empty one
// on the same address: /readyz says the service is degraded while the log does not answer,
// and then the service creates the table again, appends go on and /readyz
// is ready again, without a restart.
func TestRepairBigtableRestartedEmpty(t *testing.T) {
	bt := &restartableBttest{t: t}
	bt.start()
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("BIGTABLE_EMULATOR_HOST", bt.addr)
	base, stop := startService(t, "--simulate-rate", "20", "--repair-interval", "200ms", "--request-timeout", "1s")
	defer stop()
	waitReadyz(t, base, "ready catching_up", "")
	before := waitMetric(t, base, appended, 50, time.Minute)
	bt.stop()
	waitReadyz(t, base, "degraded", "table bqobserver-events")
	bt.start()
	waitMetric(t, base, "bqobserver_recreated_resources_total", 1, time.Minute)
	waitMetric(t, base, appended, before+200, 2*time.Minute)
	waitReadyz(t, base, "ready catching_up", "")
}

// TestRepairLostTableOnEmulatorRestart stops the Bigtable emulator under
// the running service and starts it again, empty: /readyz says the log does
// not answer meanwhile, and then the service creates the table again and
// appends go on.
func TestRepairLostTableOnEmulatorRestart(t *testing.T) {
	bin := envtest.Getenv(t, "BQOBSERVER_CBTEMULATOR_BIN", "a cbtemulator binary to stop and restart")
	emu := logtest.StartCbtemulator(t, bin)
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("BIGTABLE_EMULATOR_HOST", emu.Addr)
	base, stop := startService(t, "--simulate-rate", "20", "--repair-interval", "500ms", "--request-timeout", "1s")
	defer stop()
	before := waitMetric(t, base, appended, 50, time.Minute)
	emu.Stop()
	waitReadyz(t, base, "degraded", "table bqobserver-events")
	emu.Start(t)
	waitMetric(t, base, "bqobserver_recreated_resources_total", 1, time.Minute)
	waitMetric(t, base, appended, before+200, 2*time.Minute)
	waitReadyz(t, base, "ready catching_up", "")
}

// waitReadyz waits up to a minute for /readyz to answer 200 with one of
// statuses (space-separated) in its body and an event-log or Pub/Sub error
// that names detail. Once the log is back, the list may still be catching up with
// what queued meanwhile: that is not degraded.
func waitReadyz(t *testing.T, base string, statuses, detail string) {
	t.Helper()
	last := ""
	waitFor(t, time.Minute, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK { // not ready yet: a problem document
			last = resp.Status
			return false
		}
		var body struct {
			Status   string
			EventLog struct{ Error string } `json:"event_log"`
			PubSub   struct{ Error string } `json:"pubsub"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("/readyz: %v", err)
		}
		errs := strings.TrimSpace(body.EventLog.Error + " " + body.PubSub.Error)
		last = fmt.Sprintf("%d %s %q", resp.StatusCode, body.Status, errs)
		return resp.StatusCode == http.StatusOK && slices.Contains(strings.Fields(statuses), body.Status) && strings.Contains(errs, detail)
	}, func() string { return fmt.Sprintf("/readyz answers %s, want 200 %s %q…", last, statuses, detail) })
}

// waitFor waits up to limit for cond, failing with what's message.
func waitFor(t *testing.T, limit time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", limit, what())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// restartableBttest is an in-process Bigtable that the test can stop and
// start again, empty, on the same address.
type restartableBttest struct {
	t    *testing.T
	addr string
	srv  *bttest.Server
}

func (b *restartableBttest) start() {
	b.t.Helper()
	addr := b.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	srv, err := bttest.NewServer(addr)
	if err != nil {
		b.t.Fatalf("starting bttest on %s: %v", addr, err)
	}
	b.srv, b.addr = srv, srv.Addr
	b.t.Cleanup(srv.Close)
}

func (b *restartableBttest) stop() { b.srv.Close() }

// restartablePstest is an in-process Pub/Sub that the test can stop and
// start again, empty, on the same address.
type restartablePstest struct {
	t     *testing.T
	addr  string
	close func() // closes the running server, once
}

func (p *restartablePstest) start() {
	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	srv := pstest.NewServerWithAddress(addr)
	p.addr = srv.Addr
	p.close = sync.OnceFunc(func() { srv.Close() }) // a second Close panics
	p.t.Cleanup(p.close)
}

func (p *restartablePstest) stop() { p.close() }

// TestRepairPubSubRestartedEmpty stops Pub/Sub under the running service
// and starts it again, empty, on the same address: while it is gone, /readyz
// says the service is degraded and why (its lag, measured on what arrives,
// cannot show it) and bqobserver_backend_reachable{backend="pubsub"} is 0;
// once it is back, the service creates the topics and subscriptions again,
// /readyz is ready and intake resumes within two minutes, without a
// restart.
func TestRepairPubSubRestartedEmpty(t *testing.T) {
	ps := &restartablePstest{t: t}
	ps.start()
	t.Setenv("PUBSUB_EMULATOR_HOST", ps.addr)
	t.Setenv("BIGTABLE_EMULATOR_HOST", "")
	base, stop, logged := startRunLogged(t, "run", "--http-addr", "127.0.0.1:0", "--repair-interval", "200ms", "--request-timeout", "1s")
	defer stop()
	defer func() {
		if t.Failed() {
			t.Log("the service's log:\n" + logged())
		}
	}()
	c := pubsubtest.Client(t, ps.addr, localProject)
	entries := simulatedEntries(t, 2200)
	publishEntries(t, c, entries[:100])
	waitMetric(t, base, appended, 100, time.Minute)
	waitReadyz(t, base, "ready catching_up", "")
	waitMetric(t, base, `bqobserver_backend_reachable{backend="pubsub"}`, 1, time.Minute) // after the first check
	recreated := metricSum(t, base, "bqobserver_recreated_resources_total")

	ps.stop()
	waitReadyz(t, base, "degraded", "Pub/Sub does not answer")
	if got := metricSum(t, base, `bqobserver_backend_reachable{backend="pubsub"}`); got != 0 {
		t.Errorf("Pub/Sub reachable %g while it is gone, want 0", got)
	}
	ps.start()
	// The topology, then this replica's subscription.
	waitMetric(t, base, "bqobserver_recreated_resources_total", recreated+2, time.Minute)
	waitReadyz(t, base, "ready catching_up", "")
	// Entries published before a subscription exists again are lost with
	// it, as in Pub/Sub; what the service must not do is stall. So publish
	// a batch every few seconds until one is ingested: within two minutes,
	// since the pull streams' reconnect backoff is capped at
	// bus.ReconnectBackoff. With the library's 60 s cap, intake stalled
	// for more than two minutes in about one run in fifteen.
	before := metricSum(t, base, appended)
	deadline := time.Now().Add(2 * time.Minute)
	for next := 100; metricSum(t, base, appended) < before+50; next += 50 {
		if time.Now().After(deadline) || next+50 > len(entries) {
			t.Logf("where intake waits:\n%s", goroutinesMentioning("pubsub", "watermill", "bqobserver/events"))
			t.Fatalf("intake did not resume: %g events appended since Pub/Sub came back, after %d entries published",
				metricSum(t, base, appended)-before, next-100)
		}
		publishEntries(t, c, entries[next:next+50])
		time.Sleep(3 * time.Second)
	}
}

// TestRepairLostSubscriptions deletes the ingest subscription and the
// replica's own under the running service: it creates both again, resyncs
// its list, and entries published after that are ingested, without a
// restart. (What was published while a subscription was missing is lost,
// as in Pub/Sub.)
// ingestingOnPstest starts the service on an in-process Pub/Sub with a
// repair check every 200 ms (and args), and has it ingest the first 100 of
// 400 simulated entries. It returns the service's address, a client of the
// Pub/Sub, the entries and the repairs counted so far.
func ingestingOnPstest(t *testing.T, args ...string) (string, *pubsub.Client, []simulation.Entry, float64) {
	t.Helper()
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
	t.Setenv("BIGTABLE_EMULATOR_HOST", "")
	base, stop := startService(t, append([]string{"--repair-interval", "200ms"}, args...)...)
	t.Cleanup(func() { stop() })
	c := pubsubtest.Client(t, srv.Addr, localProject)
	entries := simulatedEntries(t, 400)
	publishEntries(t, c, entries[:100])
	waitMetric(t, base, appended, 100, time.Minute)
	return base, c, entries, waitMetric(t, base, "bqobserver_recreated_resources_total", 0, time.Second)
}

func TestRepairLostSubscriptions(t *testing.T) {
	base, c, entries, ready := ingestingOnPstest(t)
	subs := []string{"bqobserver-ingest"}
	it := c.SubscriptionAdminClient.ListSubscriptions(t.Context(), &pubsubpb.ListSubscriptionsRequest{Project: "projects/" + localProject})
	for s, err := it.Next(); err == nil; s, err = it.Next() {
		if strings.Contains(s.Name, "/bqobserver-running-") {
			subs = append(subs, s.Name[strings.LastIndexByte(s.Name, '/')+1:])
		}
	}
	if len(subs) != 2 {
		t.Fatalf("subscriptions to delete: %v, want the ingest one and the replica's", subs)
	}
	for _, s := range subs {
		err := c.SubscriptionAdminClient.DeleteSubscription(t.Context(), &pubsubpb.DeleteSubscriptionRequest{Subscription: "projects/" + localProject + "/subscriptions/" + s})
		if err != nil {
			t.Fatal(err)
		}
	}
	waitMetric(t, base, "bqobserver_recreated_resources_total", ready+2, time.Minute)
	before := metricSum(t, base, appended)
	publishEntries(t, c, entries[100:])
	waitMetric(t, base, appended, before+250, 2*time.Minute)
}

// TestRepairDetachedSubscriptions: when the audit and events topics are
// deleted, Pub/Sub keeps their subscriptions but attaches them to
// _deleted-topic_, where nothing published reaches them. The service
// creates the topics again, says so loudly (the gauge, /readyz degraded,
// an error at every check) for the ingest subscription, which it does not
// delete while it may hold entries, and creates this replica's own again
// (the resync reads what it missed from the log). Once an operator deletes
// the drained ingest subscription, it is created again on the topic and
// ingestion goes on.
func TestRepairDetachedSubscriptions(t *testing.T) {
	base, c, entries, recreated := ingestingOnPstest(t, "--no-history")
	for _, topic := range []string{"bq-audit", "bqobserver-events"} {
		if err := c.TopicAdminClient.DeleteTopic(t.Context(), &pubsubpb.DeleteTopicRequest{Topic: "projects/" + localProject + "/topics/" + topic}); err != nil {
			t.Fatal(err)
		}
	}
	// And the dead-letter subscription goes: without it, what the service
	// dead-letters is dropped.
	if err := c.SubscriptionAdminClient.DeleteSubscription(t.Context(), &pubsubpb.DeleteSubscriptionRequest{Subscription: "projects/" + localProject + "/subscriptions/bq-audit-dead-letter"}); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, base, `bqobserver_detached_subscription{name="bqobserver-ingest"}`, 1, time.Minute)
	// This replica's subscription is created again, and so are the topics
	// and the dead-letter subscription (setup leaves the detached
	// subscription alone, and creates the rest).
	waitMetric(t, base, "bqobserver_recreated_resources_total", recreated+2, time.Minute)
	for _, topic := range []string{"bq-audit", "bqobserver-events"} {
		if _, err := c.TopicAdminClient.GetTopic(t.Context(), &pubsubpb.GetTopicRequest{Topic: "projects/" + localProject + "/topics/" + topic}); err != nil {
			t.Errorf("topic %s was not created again: %v", topic, err)
		}
	}
	if _, err := c.SubscriptionAdminClient.GetSubscription(t.Context(), &pubsubpb.GetSubscriptionRequest{Subscription: "projects/" + localProject + "/subscriptions/bq-audit-dead-letter"}); err != nil {
		t.Errorf("the dead-letter subscription was not created again beside the detached one: %v", err)
	}
	var ready struct {
		Status string `json:"status"`
		PubSub struct {
			Reachable bool `json:"reachable"`
		} `json:"pubsub"`
		Detached []string `json:"detached_subscriptions"`
	}
	body := get(t, base+"/readyz")
	if err := json.Unmarshal([]byte(body), &ready); err != nil {
		t.Fatal(err)
	}
	// Pub/Sub answers: what /readyz reports is the subscription, not
	// Pub/Sub's reachability, as the metrics do.
	if ready.Status != "degraded" || !ready.PubSub.Reachable || !slices.Equal(ready.Detached, []string{"bqobserver-ingest"}) {
		t.Errorf("/readyz does not say that the ingest subscription, alone, lost its topic while Pub/Sub answers: %s", body)
	}
	if v := metricSum(t, base, `bqobserver_backend_reachable{backend="pubsub"}`); v != 1 {
		t.Errorf("Pub/Sub reported unreachable (%g) while it answers", v)
	}
	if err := c.SubscriptionAdminClient.DeleteSubscription(t.Context(), &pubsubpb.DeleteSubscriptionRequest{Subscription: "projects/" + localProject + "/subscriptions/bqobserver-ingest"}); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, base, "bqobserver_recreated_resources_total", recreated+3, time.Minute)
	before := metricSum(t, base, appended)
	publishEntries(t, c, entries[100:])
	waitMetric(t, base, appended, before+250, 2*time.Minute)
	if v := metricSum(t, base, `bqobserver_detached_subscription{name="bqobserver-ingest"}`); v != 0 {
		t.Errorf("the ingest subscription is still reported detached (%g) after it was created again", v)
	}
	if body := get(t, base+"/readyz"); strings.Contains(body, "detached_subscriptions") || strings.Contains(body, "degraded") {
		t.Errorf("/readyz still reports a detached subscription after it was created again: %s", body)
	}
}

// simulatedEntries returns the first n entries of a simulated organization.
func simulatedEntries(t *testing.T, n int) []simulation.Entry {
	t.Helper()
	org, err := simulation.New(simulation.Config{Seed: 3, Rate: 10, Start: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var out []simulation.Entry
	for e := range org.Generate(time.Hour) {
		if out = append(out, e); len(out) == n {
			break
		}
	}
	return out
}

// publishEntries publishes entries to the audit topic, as the log sink does.
func publishEntries(t *testing.T, c *pubsub.Client, entries []simulation.Entry) {
	t.Helper()
	p := c.Publisher("bq-audit")
	defer p.Stop()
	var results []*pubsub.PublishResult
	for _, e := range entries {
		results = append(results, p.Publish(t.Context(), &pubsub.Message{Data: e.Data, Attributes: e.Attributes}))
	}
	for _, r := range results {
		if _, err := r.Get(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRepairerReports runs the repairer over backends where nothing was
// created: without the right to create, it reports every missing resource
// (an error in the log, the gauge at 1); with it, it creates them and the
// gauges fall to 0.
func TestRepairerReports(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("BIGTABLE_EMULATOR_HOST", logtest.StartBttest(t))
	g := &Globals{BigtableTable: "bqobserver-events", AuditTopic: "bq-audit", AuditSubscription: "bqobserver-ingest",
		EventsTopic: "bqobserver-events", DeadLetterTopic: "bq-audit-dead-letter", DeadLetterSubscription: "bq-audit-dead-letter"}
	b, err := openBackends(t.Context(), g, os.Getenv, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	logProblem := "not checked"
	reportLog := func(_ context.Context, err error) {
		logProblem = ""
		if err != nil {
			logProblem = err.Error()
		}
	}
	pubsubProblem := "not checked"
	reportPubSub := func(_ context.Context, err error) {
		pubsubProblem = ""
		if err != nil {
			pubsubProblem = err.Error()
		}
	}
	r, err := newRepairer(&repairer{log: newLogger(&logs, slog.LevelInfo), b: b, table: g.BigtableTable, retention: time.Hour,
		top: topology(g, b.PubSubProject), resync: func(context.Context) error { return nil }, ready: func() bool { return false },
		reportLog: reportLog, reportPubSub: reportPubSub, reportDetached: func(context.Context, []string) {}, probeTimeout: 5 * time.Second}, reg)
	if err != nil {
		t.Fatal(err)
	}
	missing := func() map[string]float64 {
		got := map[string]float64{}
		for _, name := range []string{"table/bqobserver-events", "topic/bq-audit", "topic/bqobserver-events", "topic/bq-audit-dead-letter",
			"subscription/bqobserver-ingest", "subscription/bq-audit-dead-letter"} {
			kind, res, _ := strings.Cut(name, "/")
			got[name] = testutil.ToFloat64(r.missing.WithLabelValues(kind, res))
		}
		return got
	}
	r.check(t.Context())
	want := map[string]float64{"table/bqobserver-events": 1, "topic/bq-audit": 1, "topic/bqobserver-events": 1, "topic/bq-audit-dead-letter": 1,
		"subscription/bqobserver-ingest": 1, "subscription/bq-audit-dead-letter": 1}
	if diff := cmp.Diff(want, missing()); diff != "" {
		t.Errorf("missing resources without the right to create (-want +got):\n%s", diff)
	}
	if n := strings.Count(logs.String(), `"severity":"ERROR"`); n != 2 {
		t.Errorf("logged %d errors, want one for the table and one for Pub/Sub:\n%s", n, logs.String())
	}
	if want := "table bqobserver-events is missing"; logProblem != want {
		t.Errorf("reported the log as %q, want %q", logProblem, want)
	}
	if pubsubProblem != "" {
		t.Errorf("reported Pub/Sub as %q, want it answering (its resources are missing, not it)", pubsubProblem)
	}
	for backend, want := range map[string]float64{"event_log": 0, "pubsub": 1} {
		if got := testutil.ToFloat64(r.reachable.WithLabelValues(backend)); got != want {
			t.Errorf("bqobserver_backend_reachable{backend=%q} = %g, want %g", backend, got, want)
		}
	}
	r.mayCreate = true
	r.check(t.Context())
	r.check(t.Context())
	for k := range want {
		want[k] = 0
	}
	if diff := cmp.Diff(want, missing()); diff != "" {
		t.Errorf("missing resources once created (-want +got):\n%s", diff)
	}
	if logProblem != "" {
		t.Errorf("reported the log as %q once its table exists, want it answering", logProblem)
	}
	if got := testutil.ToFloat64(r.recreated.WithLabelValues("table")) + testutil.ToFloat64(r.recreated.WithLabelValues("topic")); got != 2 {
		t.Errorf("recreated %g times, want twice: the table, and the Pub/Sub topology once", got)
	}
}

// TestRepairIsBounded: a repair whose backend does not answer (creating
// the resource waits for its context) fails within the repair's bound,
// with an error in the log, and the next check runs.
func TestRepairIsBounded(t *testing.T) {
	var logs bytes.Buffer
	r, err := newRepairer(&repairer{log: newLogger(&logs, slog.LevelInfo), repairTimeout: 100 * time.Millisecond}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	hang := func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}
	done := make(chan bool, 1)
	go func() { done <- r.repair(t.Context(), "table", "bqobserver-events", true, hang) }()
	select {
	case ok := <-done:
		if ok {
			t.Error("a repair that did not answer reported the resource created")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a repair whose backend does not answer did not end within 10s")
	}
	if !strings.Contains(logs.String(), "creating it again failed") || !strings.Contains(logs.String(), "deadline exceeded") {
		t.Errorf("no error logged for the repair cut short:\n%s", logs.String())
	}
}

// goroutinesMentioning returns the stacks of this process's goroutines
// that mention any of words: what a stalled service in the test waits on.
func goroutinesMentioning(words ...string) string {
	buf := make([]byte, 16<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if slices.ContainsFunc(words, func(w string) bool { return strings.Contains(g, w) }) {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// TestFeedStallShowsInTheLag deletes this replica's own subscription under
// the running service, and no repair comes (its interval is an hour): the
// live feed receives nothing while ingest goes on appending and publishing.
// The feed's lag, measured on what arrives, would say 0; the events this
// process published and never received back make it grow, and /readyz
// says the list is catching up.
func TestFeedStallShowsInTheLag(t *testing.T) {
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
	t.Setenv("BIGTABLE_EMULATOR_HOST", "")
	base, stop := startService(t, "--repair-interval", "1h", "--catching-up-after", "1s")
	defer stop()
	c := pubsubtest.Client(t, srv.Addr, localProject)
	entries := simulatedEntries(t, 200)
	publishEntries(t, c, entries[:100])
	waitMetric(t, base, appended, 100, time.Minute)
	waitReadyz(t, base, "ready", "")
	const feedLag = `bqobserver_handler_oldest_unprocessed_seconds{handler="running-jobs-live"}`
	var replica string
	it := c.SubscriptionAdminClient.ListSubscriptions(t.Context(), &pubsubpb.ListSubscriptionsRequest{Project: "projects/" + localProject})
	for s, err := it.Next(); err == nil; s, err = it.Next() {
		if strings.Contains(s.Name, "/bqobserver-running-") {
			replica = s.Name
		}
	}
	if replica == "" {
		t.Fatal("found no subscription of this replica's")
	}
	if err := c.SubscriptionAdminClient.DeleteSubscription(t.Context(), &pubsubpb.DeleteSubscriptionRequest{Subscription: replica}); err != nil {
		t.Fatal(err)
	}
	before := metricSum(t, base, appended)
	publishEntries(t, c, entries[100:])
	waitMetric(t, base, appended, before+50, time.Minute)
	// Nothing arrives, so only the events published and not received back
	// can make the feed's lag grow; and it grows for as long as the stall.
	waitMetric(t, base, feedLag, 3, time.Minute)
	waitReadyz(t, base, "catching_up", "")
}
