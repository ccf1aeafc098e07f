// Package envtest decides what a test does when its environment lacks
// something it needs: an emulator, a browser, a binary, the shared reference
// folder. By default it skips, with a message saying how to provide the
// missing thing. When BQOBSERVER_REQUIRE_ALL is true (.ci/run sets it to 1)
// it fails with the same message instead, so that a missing emulator or
// browser in CI is a red build, not a quiet pass.
//
// Every skip that depends on the environment goes through Skip or Getenv.
// Skips that do not (testing.Short, say) are plain t.Skip calls.
package envtest

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// RequireAll names the variable that turns environment skips into failures.
const RequireAll = "BQOBSERVER_REQUIRE_ALL"

// Skip skips t because its environment lacks something, saying what and how
// to provide it, or fails t with the same message when RequireAll is true.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if required(t) {
		t.Fatal(msg + " (" + RequireAll + " is set: this test may not skip)")
	}
	t.Skip(msg)
}

// Getenv returns the value of the environment variable name. When it is
// unset or empty, it skips t (or fails it, see Skip) with the message
// "needs what: set name (.ci/run does)".
func Getenv(t testing.TB, name, what string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Skip(t, "needs %s: set %s (.ci/run does)", what, name)
	}
	return v
}

// required reports whether RequireAll is true; a value that is not a
// boolean fails t rather than guessing.
func required(t testing.TB) bool {
	t.Helper()
	v := os.Getenv(RequireAll)
	if v == "" {
		return false
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		t.Fatalf("%s=%q is not a boolean (1, true, 0 or false)", RequireAll, v)
	}
	return on
}
