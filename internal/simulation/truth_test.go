package simulation_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bq "google.golang.org/api/bigquery/v2"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/simulation"
)

// TestLostCompletionsAreTheJobsNeverCompleted checks that LostCompletions
// names exactly the finished jobs whose completion never arrived, with
// their true end, so that a test can hold reconciliation to that count.
func TestLostCompletionsAreTheJobsNeverCompleted(t *testing.T) {
	cfg := apiConfig()
	cfg.Delivery = &simulation.Delivery{LostCompletionShare: 0.1}
	f := newAPIFixtureWith(t, cfg, 20*time.Minute)
	// Every completion is delivered within two seconds of the end.
	settled := f.org.Now().Add(-5 * time.Second)
	var want []string
	ended := map[events.JobKey]time.Time{}
	for _, p := range f.org.Projects() {
		err := f.rest.Jobs.List(p).AllUsers(true).StateFilter("done").MaxResults(1000).Pages(context.Background(), func(l *bq.JobList) error {
			for _, j := range l.Jobs {
				k, end := keyOf(j.JobReference), time.UnixMilli(j.Statistics.EndTime).UTC()
				ended[k] = end
				if _, delivered := f.completed[k]; !delivered && end.Before(settled) {
					want = append(want, k.String())
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	lost := f.org.LostCompletions()
	for _, l := range lost {
		if !l.LostCompletion || l.State != events.StateDone || !l.Ended.Equal(ended[l.Job]) {
			t.Errorf("lost completion %+v: want a finished job, flagged, ending when the API says (%v)", l, ended[l.Job])
		}
		if l.Ended.Before(settled) {
			got = append(got, l.Job.String())
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("finished jobs without a delivered completion (-api +LostCompletions):\n%s", diff)
	}
	if s := f.org.Stats(); s.Lost < len(cfg.Formats)*len(lost) || len(lost) < 10 {
		t.Errorf("%d completion entries lost for %d jobs; want at least one per format for each of at least 10", s.Lost, len(lost))
	}
	if !slices.IsSortedFunc(lost, func(a, b simulation.JobTruth) int { return a.Ended.Compare(b.Ended) }) {
		t.Error("lost completions not in the order the jobs ended")
	}
}

// TestJobTruthMatchesTheEntries checks that Job reports the times the
// entries carry, for finished jobs, and the state of running ones.
func TestJobTruthMatchesTheEntries(t *testing.T) {
	f := newAPIFixture(t)
	checked := 0
	for k, ev := range f.completed {
		got, ok := f.org.Job(k)
		if !ok {
			t.Fatalf("job %s unknown", k)
		}
		want := simulation.JobTruth{Job: k, ParentJobID: ev.ParentJobID, State: events.StateDone,
			Created: ev.CreateTime, Started: ev.StartTime, Ended: ev.EndTime}
		if ev.StartTime.IsZero() {
			want.Started = time.Time{} // cancelled while queued
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("job %s (-entry +truth):\n%s", k, diff)
		}
		checked++
	}
	p := f.busiestOpen(t)
	for _, j := range f.listOpen(t, p, 1000) {
		got, ok := f.org.Job(keyOf(j.JobReference))
		if !ok || string(got.State) != j.State || !got.Ended.IsZero() {
			t.Errorf("open job %s: truth %+v, known %v; want state %s and no end", j.Id, got, ok, j.State)
		}
	}
	if _, ok := f.org.Job(events.JobKey{Project: p, Location: "US", JobID: "no-such-job"}); ok || checked < 100 {
		t.Errorf("an unknown job is known: %v; %d finished jobs checked", ok, checked)
	}
}
