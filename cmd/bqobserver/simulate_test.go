package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events/auditlog"
	"github.com/bqobserver/bqobserver/internal/simulation"
)

// simulateArgs generate half an hour of a small organization in virtual time.
var simulateArgs = []string{"simulate", "--output", "-", "--virtual-time", "--duration", "30m", "--rate", "0.5", "--projects", "5", "--seed", "7"}

// runCLI runs the command line and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(""), &stdout, &stderr, os.Getenv)
	return code, stdout.String(), stderr.String()
}

// summaryCounts reads the summary simulate prints: entries sent, and the
// count per event kind.
func summaryCounts(t *testing.T, summary string) (int, map[string]int) {
	t.Helper()
	m := regexp.MustCompile(`entries sent: (\d+)`).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("no summary in:\n%s", summary)
	}
	sent, _ := strconv.Atoi(m[1])
	kinds := map[string]int{}
	for _, k := range regexp.MustCompile(`(?m)^  (\S+)\s+(\d+)$`).FindAllStringSubmatch(summary, -1) {
		kinds[k[1]], _ = strconv.Atoi(k[2])
	}
	return sent, kinds
}

// decodedKinds decodes JSON lines as the product would and counts them as
// the summary does.
func decodedKinds(t *testing.T, lines []string) map[string]int {
	t.Helper()
	kinds := map[string]int{}
	for i, l := range lines {
		evs, err := auditlog.Decode([]byte(l))
		switch {
		case errors.Is(err, auditlog.ErrSkip):
			kinds["skipped"]++
		case err != nil:
			t.Fatalf("line %d does not decode: %v", i+1, err)
		default:
			kinds[string(evs[0].Kind)]++
		}
	}
	return kinds
}

func TestSimulateWritesJSONLines(t *testing.T) {
	code, stdout, stderr := runCLI(t, simulateArgs...)
	if code != 0 {
		t.Fatalf("simulate exited %d:\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	sent, kinds := summaryCounts(t, stderr)
	if sent != len(lines) || sent < 500 {
		t.Errorf("summary says %d entries sent, standard output has %d lines", sent, len(lines))
	}
	if diff := cmp.Diff(kinds, decodedKinds(t, lines)); diff != "" {
		t.Errorf("summary counts differ from the decoded entries (-summary +decoded):\n%s", diff)
	}
	if !strings.Contains(stderr, "simulating") {
		t.Errorf("no progress on standard error:\n%s", stderr)
	}
	code, again, _ := runCLI(t, simulateArgs...)
	if code != 0 || again != stdout {
		t.Error("a second run with the same seed wrote different entries")
	}
}

func TestSimulateReadsEnvironment(t *testing.T) {
	_, want, _ := runCLI(t, simulateArgs...)
	for name, value := range map[string]string{
		"BQOBSERVER_OUTPUT": "-", "BQOBSERVER_VIRTUAL_TIME": "true", "BQOBSERVER_DURATION": "30m",
		"BQOBSERVER_RATE": "0.5", "BQOBSERVER_PROJECTS": "5", "BQOBSERVER_SEED": "7",
	} {
		t.Setenv(name, value)
	}
	code, got, stderr := runCLI(t, "simulate")
	if code != 0 {
		t.Fatalf("simulate exited %d:\n%s", code, stderr)
	}
	if got != want {
		t.Error("simulate configured by BQOBSERVER_ variables wrote other entries than with the same flags")
	}
}

func TestSimulateRejectsBadSettings(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"simulate", "--output", "-", "--virtual-time"}, "--virtual-time needs a --duration"},
		{[]string{"simulate", "--output", "-", "--formats", "v1,v3"}, `format \"v3\" is neither v1 nor v2`},
		{[]string{"simulate", "--duration", "1m"}, "nothing to send to"},
		{[]string{"simulate", "--output", "-", "--rate", "0"}, ""}, // 0 takes the default
	} {
		t.Run(strings.Join(tc.args[1:], " "), func(t *testing.T) {
			args := tc.args
			if tc.want == "" {
				args = append(args, "--virtual-time", "--duration", "1s")
			}
			code, _, stderr := runCLI(t, args...)
			if (code != 0) != (tc.want != "") || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, standard error:\n%s\nwant failure %v mentioning %q", code, stderr, tc.want != "", tc.want)
			}
		})
	}
}

// TestSimulatePublishes publishes to the Pub/Sub emulator when
// PUBSUB_EMULATOR_HOST is set, and to an in-process pstest server otherwise.
func TestSimulatePublishes(t *testing.T) {
	if os.Getenv("PUBSUB_EMULATOR_HOST") == "" {
		srv := pstest.NewServer()
		t.Cleanup(func() { srv.Close() })
		t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := pubsub.NewClient(ctx, localProject)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	topic, sub := createTopic(ctx, t, client)
	code, stdout, stderr := runCLI(t, "simulate", "--topic", topic, "--virtual-time", "--duration", "5m", "--rate", "0.5", "--seed", "3")
	if code != 0 {
		t.Fatalf("simulate exited %d:\n%s", code, stderr)
	}
	sent, kinds := summaryCounts(t, stdout)
	var mu sync.Mutex
	var lines []string
	rctx, stop := context.WithCancel(ctx)
	subscriber := client.Subscriber(sub)
	subscriber.ReceiveSettings.MaxOutstandingMessages = 10000
	err = subscriber.Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		if m.Attributes[simulation.AttrTimestamp] == "" {
			t.Errorf("message without the %s attribute", simulation.AttrTimestamp)
		}
		if lines = append(lines, string(m.Data)); len(lines) >= sent {
			stop()
		}
	})
	if err != nil || len(lines) < sent {
		t.Fatalf("received %d of %d messages: %v", len(lines), sent, err)
	}
	if diff := cmp.Diff(kinds, decodedKinds(t, lines)); diff != "" {
		t.Errorf("summary counts differ from the messages received (-summary +received):\n%s", diff)
	}
}

// createTopic creates a topic and a subscription to it, named for the
// test, so that tests sharing an emulator do not meet.
func createTopic(ctx context.Context, t *testing.T, c *pubsub.Client) (topic, sub string) {
	t.Helper()
	suffix := fmt.Sprintf("%s-%d", strings.ToLower(t.Name()), time.Now().UnixNano())
	topic, sub = "audit-"+suffix, "sub-"+suffix
	tp, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + localProject + "/topics/" + topic})
	if err != nil {
		t.Fatalf("creating topic: %v", err)
	}
	_, err = c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/" + localProject + "/subscriptions/" + sub, Topic: tp.Name})
	if err != nil {
		t.Fatalf("creating subscription: %v", err)
	}
	return topic, sub
}
