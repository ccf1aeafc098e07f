package envtest

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// recorder is a testing.TB that records how a test ended. Skip and Fatal
// stop the function under test, as the real ones stop a test, by a panic
// that run recovers; any other method panics on the nil TB.
type recorder struct {
	testing.TB
	got outcome
}

type outcome struct {
	Skipped, Failed string
	Value           string
}

func (r *recorder) Helper() {}

func (r *recorder) Skip(args ...any) {
	r.got.Skipped = fmt.Sprint(args...)
	panic(r)
}

func (r *recorder) Fatal(args ...any) {
	r.got.Failed = fmt.Sprint(args...)
	panic(r)
}

func (r *recorder) Fatalf(format string, args ...any) { r.Fatal(fmt.Sprintf(format, args...)) }

// run calls fn with a recorder and returns how it ended.
func run(fn func(testing.TB) string) (o outcome) {
	r := &recorder{}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
		o = r.got
	}()
	r.got.Value = fn(r)
	return
}

func TestGetenv(t *testing.T) {
	const (
		name = "BQOBSERVER_ENVTEST_THING"
		msg  = "needs a thing: set BQOBSERVER_ENVTEST_THING (.ci/run does)"
	)
	getenv := func(tb testing.TB) string { return Getenv(tb, name, "a thing") }
	tests := []struct {
		name, require, value string
		want                 outcome
	}{
		{"missing skips", "", "", outcome{Skipped: msg}},
		{"missing skips when not required", "0", "", outcome{Skipped: msg}},
		{"missing skips when required is false", "false", "", outcome{Skipped: msg}},
		{"missing fails when required", "1", "", outcome{Failed: msg + " (BQOBSERVER_REQUIRE_ALL is set: this test may not skip)"}},
		{"missing fails when required is true", "true", "", outcome{Failed: msg + " (BQOBSERVER_REQUIRE_ALL is set: this test may not skip)"}},
		{"present returns its value", "", "/opt/thing", outcome{Value: "/opt/thing"}},
		{"present returns its value when required", "1", "/opt/thing", outcome{Value: "/opt/thing"}},
		{"a requirement that is not a boolean fails", "yes", "", outcome{Failed: `BQOBSERVER_REQUIRE_ALL="yes" is not a boolean (1, true, 0 or false)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireAll, tt.require)
			t.Setenv(name, tt.value)
			if diff := cmp.Diff(run(getenv), tt.want); diff != "" {
				t.Errorf("Getenv ended the test differently (-got +want):\n%s", diff)
			}
		})
	}
}

func TestSkip(t *testing.T) {
	skip := func(tb testing.TB) string {
		Skip(tb, "reference folder not found at %s", "/nowhere")
		return "went on"
	}
	for _, tt := range []struct {
		name, require string
		want          outcome
	}{
		{"skips", "", outcome{Skipped: "reference folder not found at /nowhere"}},
		{"fails when required", "1", outcome{Failed: "reference folder not found at /nowhere (BQOBSERVER_REQUIRE_ALL is set: this test may not skip)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireAll, tt.require)
			if diff := cmp.Diff(run(skip), tt.want); diff != "" {
				t.Errorf("Skip ended the test differently (-got +want):\n%s", diff)
			}
		})
	}
}
