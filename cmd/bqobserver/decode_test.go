package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/auditlog"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../events/auditlog/testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func compact(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decodeEvents(t *testing.T, entries ...[]byte) []events.Event {
	t.Helper()
	var evs []events.Event
	for _, e := range entries {
		got, _ := auditlog.Decode(e)
		evs = append(evs, got...)
	}
	return evs
}

type cmdResult struct {
	code           int
	stdout, stderr string
}

func runCmd(t *testing.T, stdin string, args ...string) cmdResult {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runContext(context.Background(), args, strings.NewReader(stdin), &out, &errOut, func(string) string { return "" })
	return cmdResult{code, out.String(), errOut.String()}
}

func TestDecodeCommand(t *testing.T) {
	job := fixture(t, "v2-jobchange-done-query.json")
	job1 := fixture(t, "v1-jobcompleted-query-done.json")
	skip := fixture(t, "v1-insert-dryrun.json")
	bad := fixture(t, "bad-no-job-id.json")
	array := writeFile(t, "array.json", []byte("["+string(job)+","+string(skip)+","+string(bad)+"]"))
	lines := string(compact(t, job)) + "\n" + string(compact(t, job1)) + "\n{not json\n"
	env, _ := json.Marshal(map[string]any{"message": map[string]any{"data": base64.StdEncoding.EncodeToString(job1), "messageId": "1"}})
	push := writeFile(t, "push.json", env)
	single := writeFile(t, "single.json", job)

	tests := []struct {
		name       string
		stdin      string
		args       []string
		wantCode   int
		wantEvents []events.Event
		wantErr    []string // one stderr line each, in order: a prefix naming the input
	}{
		{"one entry", "", []string{single}, 0, decodeEvents(t, job), nil},
		{"array with a skip and a malformed entry", "", []string{array}, 1, decodeEvents(t, job),
			[]string{array + "#2: skipped (dry_run)", array + "#3: error: malformed audit entry (no_job_id)", "1 inputs malformed"}},
		{"json lines on stdin", lines, nil, 1, decodeEvents(t, job, job1),
			[]string{"stdin:3: error: malformed audit entry (bad_json)", "1 inputs malformed"}},
		{"push envelope", "", []string{push}, 0, decodeEvents(t, job1), nil},
		{"several files", "", []string{single, push}, 0, decodeEvents(t, job, job1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(t, tt.stdin, append([]string{"decode"}, tt.args...)...)
			if r.code != tt.wantCode {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", r.code, tt.wantCode, r.stderr)
			}
			var got []events.Event
			for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
				if line == "" {
					continue
				}
				var e events.Event
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("stdout line %q is not an event: %v", line, err)
				}
				got = append(got, e)
			}
			if diff := cmp.Diff(tt.wantEvents, got); diff != "" {
				t.Errorf("events on stdout mismatch (-want +got):\n%s", diff)
			}
			errLines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(tt.wantErr) == 0 && strings.TrimSpace(r.stderr) != "" {
				t.Errorf("unexpected stderr:\n%s", r.stderr)
			}
			if len(tt.wantErr) > 0 && len(errLines) != len(tt.wantErr) {
				t.Fatalf("stderr has %d lines, want %d:\n%s", len(errLines), len(tt.wantErr), r.stderr)
			}
			for i, want := range tt.wantErr {
				if !strings.HasPrefix(errLines[i], want) {
					t.Errorf("stderr line %d = %q, want prefix %q", i+1, errLines[i], want)
				}
			}
		})
	}
}
