package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bqobserver/bqobserver/internal/testutil/pubsubtest"
)

// pubsubEnv points the commands at a Pub/Sub the test owns: the emulator
// when PUBSUB_EMULATOR_HOST is set, else a pstest server (the client library
// reads the variable, so the commands connect to it as to an emulator). The
// project is the test's own, which the BigQuery emulator does not know, so
// the commands write no history.
func pubsubEnv(t *testing.T) (project string, client *pubsub.Client) {
	t.Helper()
	t.Setenv("BIGQUERY_EMULATOR_HOST", "")
	addr := os.Getenv("PUBSUB_EMULATOR_HOST")
	if addr == "" {
		srv := pstest.NewServer()
		t.Cleanup(func() { srv.Close() })
		addr = srv.Addr
	}
	t.Setenv("PUBSUB_EMULATOR_HOST", addr)
	project = pubsubtest.Project(t)
	c, err := pubsub.NewClient(t.Context(), project, pubsubtest.Options(addr)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return project, c
}

func runEnv(t *testing.T, stdin string, args ...string) cmdResult {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runContext(t.Context(), args, strings.NewReader(stdin), &out, &errOut, os.Getenv)
	return cmdResult{code, out.String(), errOut.String()}
}

// TestSetupThenPublish runs setup twice (it must be idempotent), then
// publishes a file of entries and reads them back from the ingest
// subscription setup created.
func TestSetupThenPublish(t *testing.T) {
	project, client := pubsubEnv(t)
	for i := range 2 {
		if r := runEnv(t, "", "setup", "--project", project); r.code != 0 {
			t.Fatalf("setup run %d: exit %d\nstdout:\n%s\nstderr:\n%s", i+1, r.code, r.stdout, r.stderr)
		}
	}
	sub, err := client.SubscriptionAdminClient.GetSubscription(t.Context(), &pubsubpb.GetSubscriptionRequest{
		Subscription: "projects/" + project + "/subscriptions/bqobserver-ingest"})
	if err != nil {
		t.Fatalf("setup did not create the ingest subscription: %v", err)
	}
	if sub.GetDeadLetterPolicy().GetDeadLetterTopic() != "projects/"+project+"/topics/bq-audit-dead-letter" {
		t.Errorf("ingest subscription has dead-letter policy %v", sub.GetDeadLetterPolicy())
	}

	entries := [][]byte{compact(t, fixture(t, "v2-jobchange-done-query.json")), compact(t, fixture(t, "v1-jobcompleted-query-done.json"))}
	file := writeFile(t, "entries.jsonl", append(append(entries[0], '\n'), entries[1]...))
	r := runEnv(t, "", "publish", "--project", project, file)
	if r.code != 0 || !strings.Contains(r.stdout, "published 2 entries") {
		t.Fatalf("publish: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	var mu sync.Mutex
	var got [][]byte
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	client.Subscriber("bqobserver-ingest").Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m.Data)
		if len(got) == len(entries) {
			cancel()
		}
	})
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(got, bytes.Compare)
	slices.SortFunc(entries, bytes.Compare)
	if !slices.EqualFunc(got, entries, bytes.Equal) {
		t.Errorf("received %d entries, want the %d published, byte for byte", len(got), len(entries))
	}
}

func TestPublishNeedsATarget(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	r := runEnv(t, "{}", "publish")
	if r.code == 0 || !strings.Contains(r.stderr, "nothing to publish to") {
		t.Errorf("publish with no project and no emulator: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestPushOnlyDeployment: with no ingest subscription (--audit-subscription
// empty), setup makes only the push subscription on the audit topic, and a
// run that does not pull neither needs the ingest subscription nor creates
// it again: a pull subscription nobody reads would keep every entry for
// seven days. A configuration in which nothing would receive the entries
// is refused.
func TestPushOnlyDeployment(t *testing.T) {
	project, client := pubsubEnv(t)
	t.Setenv("BIGTABLE_EMULATOR_HOST", "")
	for _, args := range [][]string{
		{"setup", "--project", project, "--audit-subscription="},
		{"run", "--project", project, "--no-pull"},
		{"run", "--project", project, "--audit-subscription=", "--push-endpoint"},
	} {
		r := runEnv(t, "", args...)
		out := r.stdout + r.stderr
		if r.code == 0 || !strings.Contains(out, "nothing would receive") && !strings.Contains(out, "--no-pull --push-endpoint") {
			t.Errorf("%v: exit %d, output %s; want a refusal saying why", args, r.code, out)
		}
	}
	if r := runEnv(t, "", "setup", "--project", project, "--audit-subscription=", "--push-url", "https://bqobserver.example/push/audit"); r.code != 0 {
		t.Fatalf("setup: exit %d\n%s", r.code, r.stderr)
	}
	exists := func(id string) bool {
		_, err := client.SubscriptionAdminClient.GetSubscription(t.Context(), &pubsubpb.GetSubscriptionRequest{Subscription: "projects/" + project + "/subscriptions/" + id})
		if err != nil && status.Code(err) != codes.NotFound {
			t.Fatal(err)
		}
		return err == nil
	}
	if exists("bqobserver-ingest") || !exists("bqobserver-push") {
		t.Fatalf("after a push-only setup: ingest subscription %v, push subscription %v; want false, true", exists("bqobserver-ingest"), exists("bqobserver-push"))
	}
	base, stop := startService(t, "--project", project, "--no-pull", "--push-endpoint", "--repair-interval", "100ms")
	defer stop()
	// The start applies the run's topology, and the repairer checks it.
	waitMetric(t, base, `bqobserver_backend_reachable{backend="pubsub"}`, 1, 30*time.Second)
	if exists("bqobserver-ingest") {
		t.Error("a run that does not pull created the ingest subscription")
	}
}

// TestPublishLeavesOutWhatIsNotJSON: a line of a file that is not JSON is
// reported by name and line and not published, and publish exits 1, unless
// --allow-invalid asks for it (to test the dead-letter path).
func TestPublishLeavesOutWhatIsNotJSON(t *testing.T) {
	project, _ := pubsubEnv(t)
	if r := runEnv(t, "", "setup", "--project", project); r.code != 0 {
		t.Fatalf("setup: exit %d\n%s", r.code, r.stderr)
	}
	good := compact(t, fixture(t, "v2-jobchange-done-query.json"))
	file := writeFile(t, "entries.jsonl", append(append(good, '\n'), []byte(`{"insertId": "cut short`)...))
	r := runEnv(t, "", "publish", "--project", project, file)
	if r.code != 1 || !strings.Contains(r.stdout, "published 1 entries") || !strings.Contains(r.stderr, "entries.jsonl:2: not JSON") {
		t.Errorf("publish: exit %d, want 1, one entry published and line 2 reported\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = runEnv(t, "", "publish", "--project", project, "--allow-invalid", file)
	if r.code != 0 || !strings.Contains(r.stdout, "published 2 entries") {
		t.Errorf("publish --allow-invalid: exit %d, want 0 and both published\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestSetupPushURL refuses a push URL that is not the push intake's.
func TestSetupPushURL(t *testing.T) {
	project, _ := pubsubEnv(t)
	for _, u := range []string{"https://bqobserver.example/", "ftp://bqobserver.example/push/audit", "bqobserver.example/push/audit"} {
		if r := runEnv(t, "", "setup", "--project", project, "--push-url", u); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "is not the push intake's URL") {
			t.Errorf("setup --push-url %s: exit %d\n%s%s", u, r.code, r.stdout, r.stderr)
		}
	}
	// The emulator pushes to http (pubsubEnv sets PUBSUB_EMULATOR_HOST);
	// Google's Pub/Sub only to https.
	if r := runEnv(t, "", "setup", "--project", project, "--push-url", "http://127.0.0.1:8080/push/audit"); r.code != 0 {
		t.Errorf("setup --push-url http://… on the emulator: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if err := checkPushURL("http://bqobserver.example/push/audit", false); err == nil {
		t.Error("an http push URL is accepted for Google's Pub/Sub")
	}
}
