package simulation_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/simulation"
)

// TestJobsAPICancelOfAStatementNamesTheStatement cancels a running
// statement of a script through the API: the CancelJob entry and its meant
// event name the statement that was called, not its script, while the
// statement and its script both stop cancelled.
func TestJobsAPICancelOfAStatementNamesTheStatement(t *testing.T) {
	f := newAPIFixture(t)
	script, child := f.runningChild(t)
	if _, err := f.rest.Jobs.Cancel(child.Project, child.JobID).Location(child.Location).Do(); err != nil {
		t.Fatalf("cancelling %s: %v", child, err)
	}
	entries := f.generate(time.Minute)
	const stopped = "v2 completed 1: Job execution was cancelled: User requested cancellation"
	for _, tc := range []struct {
		name string
		key  events.JobKey
		want []string
	}{
		{"statement", child, []string{"v2 cancel_requested by " + simulation.DefaultOperator, stopped}},
		{"script", script, []string{stopped}},
	} {
		got := describeEntries(entries, tc.key)
		slices.Sort(got)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("entries of the %s %s after the cancel (-want +got):\n%s", tc.name, tc.key, diff)
		}
	}
}

// TestJobsAPICancelOfAFinishedStatementLeavesItsScript cancels a
// statement that is done while its script runs on: as for any finished
// job, nothing is logged and nothing stops.
func TestJobsAPICancelOfAFinishedStatementLeavesItsScript(t *testing.T) {
	f := newAPIFixture(t)
	script, child := f.scriptChild(t, "done")
	if _, err := f.rest.Jobs.Cancel(child.Project, child.JobID).Location(child.Location).Do(); err != nil {
		t.Fatalf("cancelling %s: %v", child, err)
	}
	entries := f.generate(time.Minute)
	for _, key := range []events.JobKey{child, script} {
		for _, d := range describeEntries(entries, key) {
			if strings.Contains(d, "cancel") {
				t.Errorf("after a cancel of the finished statement %s, %s has the entry %s", child, key, d)
			}
		}
	}
}

// runningChild finds a running statement of a running script.
func (f *apiFixture) runningChild(t *testing.T) (script, child events.JobKey) {
	t.Helper()
	return f.scriptChild(t, "running")
}

// scriptChild finds a statement in state of a running script, running the
// simulation on a little until there is one.
func (f *apiFixture) scriptChild(t *testing.T, state string) (script, child events.JobKey) {
	t.Helper()
	for range 60 {
		for _, p := range f.org.Projects() {
			if script, child, ok := f.scriptChildIn(t, p, state); ok {
				return script, child
			}
		}
		f.generate(10 * time.Second)
	}
	t.Fatalf("no running script has a statement %s", state)
	return events.JobKey{}, events.JobKey{}
}

func (f *apiFixture) scriptChildIn(t *testing.T, project, state string) (script, child events.JobKey, ok bool) {
	t.Helper()
	ctx := context.Background()
	top, err := f.rest.Jobs.List(project).AllUsers(true).StateFilter("running").MaxResults(1000).Context(ctx).Do()
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range top.Jobs {
		if j.Statistics.NumChildJobs == 0 {
			continue
		}
		children, err := f.rest.Jobs.List(project).AllUsers(true).ParentJobId(j.JobReference.JobId).StateFilter(state).Context(ctx).Do()
		if err != nil {
			t.Fatal(err)
		}
		if len(children.Jobs) > 0 {
			r, c := j.JobReference, children.Jobs[0].JobReference
			return events.JobKey{Project: r.ProjectId, Location: r.Location, JobID: r.JobId},
				events.JobKey{Project: c.ProjectId, Location: c.Location, JobID: c.JobId}, true
		}
	}
	return events.JobKey{}, events.JobKey{}, false
}
