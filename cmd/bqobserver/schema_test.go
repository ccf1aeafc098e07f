package main

import (
	"strings"
	"testing"

	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
)

// TestStartKeepsALongerRetention: a service that applies the schema as it
// starts (here on emulators, as --auto-create does on Google Cloud) with
// the default --retention leaves the longer one setup gave the event log,
// instead of having Bigtable collect, for good, the events between the two.
func TestStartKeepsALongerRetention(t *testing.T) {
	project, _ := pubsubEnv(t)
	bt := logtest.Connect(t, logtest.StartBttest(t))
	t.Setenv("BIGTABLE_EMULATOR_HOST", bt.Addr)
	where := []string{"--project", project, "--bigtable-project", logtest.Project, "--bigtable-instance", logtest.Instance, "--bigtable-table", bt.Table}
	if r := runEnv(t, "", append([]string{"setup", "--retention", "17520h"}, where...)...); r.code != 0 {
		t.Fatalf("setup: exit %d\n%s", r.code, r.stderr)
	}
	addr, stop, logged := startRunLogged(t, append([]string{"run", "--http-addr", "127.0.0.1:0"}, where...)...)
	defer stop()
	waitReady(t, "http://"+strings.TrimPrefix(addr, "http://"))
	info, err := bt.Admin.TableInfo(t.Context(), bt.Table)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range info.FamilyInfos {
		if f.Name == "e" && f.GCPolicy != "age() > 730d" {
			t.Errorf("after a start with the default retention, the events family is %q, want setup's age() > 730d", f.GCPolicy)
		}
	}
	if !strings.Contains(logged(), "keeps events longer than --retention says") {
		t.Error("the start did not warn that the event log keeps events longer than --retention")
	}
}
