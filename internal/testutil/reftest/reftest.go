// Package reftest finds the shared reference material that tests read in
// place: real BigQuery audit-log entries and the field reference, in
// ../shared/reference beside the module root. A user's clone has no such
// folder, so tests that need it skip with a message saying where it was
// looked for (or fail, under envtest.RequireAll).
package reftest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bqobserver/bqobserver/internal/testutil/envtest"
)

// Dir returns the reference folder (holding auditlogs/ and
// AUDITLOG-FORMATS.md), or skips the test when it is absent (see envtest).
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			envtest.Skip(t, "module root (go.mod) not found; cannot locate ../shared/reference")
		}
		dir = parent
	}
	ref := filepath.Join(dir, "..", "shared", "reference")
	if _, err := os.Stat(filepath.Join(ref, "auditlogs")); err != nil {
		envtest.Skip(t, "reference audit logs not found at %s: this test needs ../shared/reference/auditlogs beside the repository", filepath.Join(ref, "auditlogs"))
	}
	return ref
}

// AuditLogs returns the folder of real audit-log entries, or skips the test.
func AuditLogs(t testing.TB) string {
	t.Helper()
	return filepath.Join(Dir(t), "auditlogs")
}
