package main

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/projections/access"
	"github.com/bqobserver/bqobserver/projections/running"
)

// TestSecurityHeaders: every answer carries the headers that keep browsers
// from misusing it, and the page its own policy with no inline script.
func TestSecurityHeaders(t *testing.T) {
	base, stop := runService(t, "--no-simulate")
	defer stop()
	common := map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
		"Cross-Origin-Resource-Policy": "same-origin"}
	for _, tc := range []struct {
		method, path string
		policy       *regexp.Regexp
	}{
		{"GET", "/", regexp.MustCompile(`^default-src 'none'; script-src 'self'; .*frame-ancestors 'none'`)},
		{"GET", "/api/v1/summary", regexp.MustCompile(`^default-src 'none'; frame-ancestors 'none'`)},
		{"GET", "/api/v1/nothing", regexp.MustCompile(`^default-src 'none'; frame-ancestors 'none'`)},
		{"POST", "/metrics", regexp.MustCompile(`^default-src 'none'; frame-ancestors 'none'`)},
		{"GET", "/healthz", regexp.MustCompile(`^default-src 'none'; frame-ancestors 'none'`)},
	} {
		_, h, _ := call(t, tc.method, base+tc.path, "", "Content-Type", "application/json")
		got := map[string]string{}
		for k := range common {
			got[k] = h.Get(k)
		}
		if diff := cmp.Diff(common, got); diff != "" {
			t.Errorf("%s %s: headers (-want +got):\n%s", tc.method, tc.path, diff)
		}
		if csp := h.Get("Content-Security-Policy"); !tc.policy.MatchString(csp) || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s %s: Content-Security-Policy %q, want %s and no unsafe-inline", tc.method, tc.path, csp, tc.policy)
		}
	}
	status, h, body := call(t, "POST", base+"/metrics", "", "Content-Type", "application/json")
	if status != http.StatusMethodNotAllowed || h.Get("Content-Type") != "application/problem+json" || h.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /metrics: %d %s Allow %q %s, want a 405 problem document allowing GET, HEAD", status, h.Get("Content-Type"), h.Get("Allow"), body)
	}
}

// TestStreamOutlivesTheWriteTimeout: the server cuts answers that take
// longer than its write timeout, but not the event stream, which bounds
// each of its writes instead.
func TestStreamOutlivesTheWriteTimeout(t *testing.T) {
	bt := logtest.NewBigtable(t)
	log, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table})
	if err != nil {
		t.Fatal(err)
	}
	proj, err := running.New(running.Config{StreamHeartbeat: 100 * time.Millisecond}, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := proj.Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	proj.MarkLive()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := proj.Handler()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeHTTP(w, r.WithContext(access.WithPrincipal(r.Context(), access.Anonymous())))
	})
	short := timeouts{readHeader: time.Second, read: 300 * time.Millisecond, write: 300 * time.Millisecond, idle: time.Second}
	srv := newHTTPServerWith(ln, h, slog.New(slog.DiscardHandler), short)
	ctx, cancel := context.WithCancel(t.Context())
	go srv.serve(ctx)
	t.Cleanup(func() {
		cancel()
		proj.Close()
		srv.shutdown(context.Background())
	})
	resp, err := http.Get("http://" + ln.Addr().String() + "/api/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.Sleep(time.Second) // more than three write timeouts
	key := events.JobKey{Project: "p", Location: "US", JobID: "late"}
	ev := events.Event{ID: "e1", Kind: events.KindInserted, Job: key, Time: time.Now(), State: events.StateRunning, Source: events.Source{Format: "v2"}}
	if err := proj.Apply(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	added := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && strings.Contains(data, `"late"`) {
				added <- data
				return
			}
		}
		close(added)
	}()
	select {
	case data, ok := <-added:
		var j struct {
			Key events.JobKey `json:"key"`
		}
		if !ok || json.Unmarshal([]byte(data), &j) != nil || j.Key != key {
			t.Fatalf("the stream ended or said %q, want the job added after the write timeout", data)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
}

// TestNoQueryTextInLogs runs the embedded organization at INFO, pushes
// well-formed and malformed entries and cancels a job: no query text the
// service has seen appears in its logs.
func TestNoQueryTextInLogs(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", "")
	t.Setenv("BIGTABLE_EMULATOR_HOST", "")
	addr, stop, logged := startRunLogged(t, "run", "--http-addr", "127.0.0.1:0", "--push-endpoint", "--simulate-rate", "20")
	base := "http://" + strings.TrimPrefix(addr, "http://")
	defer stop()
	waitReady(t, base)
	for _, name := range []string{"v1-insert-query-running.json", "bad-field-shape.json", "bad-field-slotms.json", "bad-json-truncated.json"} {
		call(t, "POST", base+"/push/audit", pushBody(t, name), "Content-Type", "application/json")
	}
	var page struct {
		Jobs []struct {
			Key   events.JobKey `json:"key"`
			Query string        `json:"query"`
		} `json:"jobs"`
	}
	waitUntil(t, "simulated queries to be listed", func() bool {
		_, _, body := call(t, "GET", base+"/api/v1/jobs?type=query&limit=1000", "")
		return json.Unmarshal([]byte(body), &page) == nil && len(page.Jobs) >= 20
	})
	k := page.Jobs[0].Key
	if k.Project == "acme-analytics" { // the pushed job, which the simulation does not know
		k = page.Jobs[1].Key
	}
	if status, _, body := call(t, "POST", base+"/api/v1/jobs/"+k.Project+"/"+k.Location+"/"+k.JobID+":cancel", `{"reason":"too slow"}`,
		"Content-Type", "application/json"); status != http.StatusAccepted {
		t.Errorf("cancel: %d %s", status, body)
	}
	time.Sleep(time.Second)
	logs := logged()
	if !strings.Contains(logs, `"msg":"job cancel requested"`) && !strings.Contains(logs, `"message":"job cancel requested"`) {
		t.Errorf("the cancel is not in the log:\n%s", logs)
	}
	seen := 0
	for _, j := range page.Jobs {
		for _, line := range strings.Split(j.Query, "\n") {
			if line = strings.TrimSpace(line); len(line) < 24 {
				continue // too short to tell from other text
			}
			seen++
			if strings.Contains(logs, line) {
				t.Errorf("the logs quote the query of %s: %q", j.Key, line)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no query line to look for")
	}
	if strings.Contains(logs, "acme-analytics.sales.orders") {
		t.Error("the logs quote the pushed query")
	}
	t.Logf("looked for %d query lines in %d bytes of logs", seen, len(logs))
}
