package reftest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/internal/testutil/envtest"
	"github.com/bqobserver/bqobserver/internal/testutil/tbtest"
)

// checkout makes a module root with a package folder inside, beside a
// shared folder, and moves into the package folder. With reference, the
// shared folder holds reference/auditlogs.
func checkout(t *testing.T, reference bool) string {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "repo")
	for _, dir := range []string{filepath.Join(root, "pkg", "sub"), filepath.Join(base, "shared")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module example.com/x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if reference {
		if err := os.MkdirAll(filepath.Join(base, "shared", "reference", "auditlogs"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(filepath.Join(root, "pkg", "sub"))
	return root
}

func TestAuditLogs(t *testing.T) {
	const refused = " (BQOBSERVER_REQUIRE_ALL is set: this test may not skip)"
	tests := []struct {
		name      string
		reference bool
		require   string
		want      func(root string) (tbtest.Outcome, string)
	}{
		{"present", true, "1", func(root string) (tbtest.Outcome, string) {
			return tbtest.Outcome{}, filepath.Join(root, "..", "shared", "reference", "auditlogs")
		}},
		{"absent skips", false, "", func(root string) (tbtest.Outcome, string) {
			return tbtest.Outcome{Skipped: absent(root)}, ""
		}},
		{"absent fails when required", false, "1", func(root string) (tbtest.Outcome, string) {
			return tbtest.Outcome{Fatal: absent(root) + refused}, ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(envtest.RequireAll, tt.require)
			root := checkout(t, tt.reference)
			var dir string
			got := tbtest.Run(t, func(tb testing.TB) { dir = AuditLogs(tb) })
			want, wantDir := tt.want(root)
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("AuditLogs ended the test differently (-got +want):\n%s", diff)
			}
			if dir != wantDir {
				t.Errorf("AuditLogs returned %q, want %q", dir, wantDir)
			}
		})
	}
}

func absent(root string) string {
	dir := filepath.Join(root, "..", "shared", "reference", "auditlogs")
	return "reference audit logs not found at " + dir + ": this test needs ../shared/reference/auditlogs beside the repository"
}
