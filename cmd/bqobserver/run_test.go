package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// runService starts `bqobserver run` in the embedded mode with args and
// returns its base URL and a function that stops it and returns its exit
// code.
func runService(t *testing.T, args ...string) (string, func() int) {
	t.Helper()
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("BIGTABLE_EMULATOR_HOST", "")
	t.Setenv("BIGQUERY_EMULATOR_HOST", "")
	return startService(t, args...)
}

// startService starts `bqobserver run` with args, in whatever mode the
// environment selects, on a free loopback port.
func startService(t testing.TB, args ...string) (string, func() int) {
	t.Helper()
	return startRun(t, append([]string{"run", "--http-addr", "127.0.0.1:0"}, args...)...)
}

// startRun runs the command line args, which must start the service, and
// returns the address it serves on and a function that stops it and
// returns its exit code.
func startRun(t testing.TB, args ...string) (string, func() int) {
	t.Helper()
	addr, stop, _ := startRunLogged(t, args...)
	return addr, stop
}

// startRunLogged is startRun that also keeps what the service writes on
// its standard output (its logs), for logged to return.
func startRunLogged(t testing.TB, args ...string) (addr string, stop func() int, logged func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, args, strings.NewReader(""), pw, io.Discard, os.Getenv)
		pw.Close()
	}()
	addrs := make(chan string, 1)
	var mu sync.Mutex
	var out strings.Builder
	logged = func() string {
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			mu.Lock()
			out.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if a, ok := strings.CutPrefix(sc.Text(), "bqobserver is serving on "); ok {
				addrs <- a
			}
		}
	}()
	stop = func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			t.Fatal("run did not stop within 30s of its context ending")
			return -1
		}
	}
	select {
	case a := <-addrs:
		return a, stop, logged
	case code := <-done:
		t.Fatalf("run exited with %d before serving:\n%s", code, logged())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("run did not print its address within 30s")
	}
	return "", nil, nil
}

// TestRunEmbedded starts the service with no configuration, feeds it an
// entry through the push intake and checks the metrics and a clean stop.
func TestRunEmbedded(t *testing.T) {
	base, stop := runService(t, "--push-endpoint", "--no-simulate")
	entry := fixture(t, "v2-jobchange-done-query.json")
	body, _ := json.Marshal(map[string]any{"message": map[string]any{"data": base64.StdEncoding.EncodeToString(entry), "messageId": "m1"}})
	resp, err := http.Post(base+"/push/audit", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("push answered %d, want 204", resp.StatusCode)
	}
	metrics := get(t, base+"/metrics")
	for _, want := range []string{`bqobserver_ingest_received_total{intake="push"} 1`, `bqobserver_ingest_decoded_events_total{kind="completed"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	historyHasTheJob(t, base)
	if code := stop(); code != 0 {
		t.Errorf("run exited with %d after its context ended, want 0", code)
	}
}

// TestRunAnswersOnlyLoopbackHosts: with --auth=none on a loopback address
// every caller is an admin, so a request that names the service by another
// host (a page that rebound its own name to 127.0.0.1) is refused, reads,
// cancels and pushes alike; the service's own names are answered.
func TestRunAnswersOnlyLoopbackHosts(t *testing.T) {
	base, stop := runService(t, "--push-endpoint", "--no-simulate")
	defer stop()
	waitReady(t, base)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path, host string
		want               int
	}{
		{"GET", "/api/v1/jobs", "rebind.attacker.example:" + port, http.StatusForbidden},
		{"GET", "/", "rebind.attacker.example:" + port, http.StatusForbidden},
		{"POST", "/api/v1/jobs/p/US/j:cancel", "rebind.attacker.example:" + port, http.StatusForbidden},
		{"POST", "/push/audit", "rebind.attacker.example:" + port, http.StatusForbidden},
		{"GET", "/api/v1/jobs", "127.0.0.1:" + port, http.StatusOK},
		{"GET", "/api/v1/jobs", "localhost:" + port, http.StatusOK},
	} {
		req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tc.host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", "http://"+tc.host)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s with Host %s answered %d, want %d", tc.method, tc.path, tc.host, resp.StatusCode, tc.want)
		}
	}
}

func TestRunWithoutPushEndpoint(t *testing.T) {
	base, stop := runService(t, "--no-simulate")
	defer stop()
	resp, err := http.Post(base+"/push/audit", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("push without --push-endpoint answered %d, want 404", resp.StatusCode)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// historyHasTheJob checks that the history API lists the job of the entry
// pushed (it ended at 2024-04-01T02:07:41.25Z) and names the embedded
// mode's BigQuery project.
func historyHasTheJob(t *testing.T, base string) {
	t.Helper()
	var page struct {
		Jobs []struct {
			State string `json:"state"`
		} `json:"jobs"`
		Project string `json:"bigquery_project"`
		Dataset string `json:"bigquery_dataset"`
	}
	body := get(t, base+"/api/v1/history?from=2024-04-01T02:00:00Z&to=2024-04-01T03:00:00Z")
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatalf("history: %v\n%s", err, body)
	}
	if len(page.Jobs) != 1 || page.Jobs[0].State != "DONE" || page.Project != localProject || page.Dataset != "bqobserver" {
		t.Errorf("history = %s, want the pushed job, DONE, in %s.bqobserver", body, localProject)
	}
}
