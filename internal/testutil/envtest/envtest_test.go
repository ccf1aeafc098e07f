package envtest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/internal/testutil/tbtest"
)

const refused = " (BQOBSERVER_REQUIRE_ALL is set: this test may not skip)"

func TestGetenv(t *testing.T) {
	const (
		name = "BQOBSERVER_ENVTEST_THING"
		msg  = "needs a thing: set BQOBSERVER_ENVTEST_THING (.ci/run does)"
	)
	tests := []struct {
		name, require, value string
		want                 tbtest.Outcome
		wantValue            string
	}{
		{"missing skips", "", "", tbtest.Outcome{Skipped: msg}, ""},
		{"missing skips when not required", "0", "", tbtest.Outcome{Skipped: msg}, ""},
		{"missing skips when required is false", "false", "", tbtest.Outcome{Skipped: msg}, ""},
		{"missing fails when required", "1", "", tbtest.Outcome{Fatal: msg + refused}, ""},
		{"missing fails when required is true", "true", "", tbtest.Outcome{Fatal: msg + refused}, ""},
		{"present returns its value", "", "/opt/thing", tbtest.Outcome{}, "/opt/thing"},
		{"present returns its value when required", "1", "/opt/thing", tbtest.Outcome{}, "/opt/thing"},
		{"a requirement that is not a boolean fails", "yes", "",
			tbtest.Outcome{Fatal: `BQOBSERVER_REQUIRE_ALL="yes" is not a boolean (1, true, 0 or false)`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireAll, tt.require)
			t.Setenv(name, tt.value)
			var value string
			got := tbtest.Run(t, func(tb testing.TB) { value = Getenv(tb, name, "a thing") })
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Getenv ended the test differently (-got +want):\n%s", diff)
			}
			if value != tt.wantValue {
				t.Errorf("Getenv returned %q, want %q", value, tt.wantValue)
			}
		})
	}
}

func TestSkip(t *testing.T) {
	const msg = "reference folder not found at /nowhere"
	for _, tt := range []struct {
		name, require string
		want          tbtest.Outcome
	}{
		{"skips", "", tbtest.Outcome{Skipped: msg}},
		{"fails when required", "1", tbtest.Outcome{Fatal: msg + refused}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireAll, tt.require)
			got := tbtest.Run(t, func(tb testing.TB) {
				Skip(tb, "reference folder not found at %s", "/nowhere")
				tb.Error("the test went on after Skip")
			})
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Skip ended the test differently (-got +want):\n%s", diff)
			}
		})
	}
}
