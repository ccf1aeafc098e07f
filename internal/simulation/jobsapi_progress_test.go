package simulation_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"github.com/google/go-cmp/cmp"
	bq "google.golang.org/api/bigquery/v2"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/simulation"
)

// listOpen lists a project's pending and running jobs with the REST client
// as enrichment does: all users, both states in one call, full projection,
// every page.
func (f *apiFixture) listOpen(t *testing.T, project string, pageSize int64) []*bq.JobListJobs {
	t.Helper()
	var out []*bq.JobListJobs
	call := f.rest.Jobs.List(project).AllUsers(true).StateFilter("pending", "running").Projection("full").MaxResults(pageSize)
	err := call.Pages(context.Background(), func(l *bq.JobList) error {
		out = append(out, l.Jobs...)
		return nil
	})
	if err != nil {
		t.Fatalf("listing the open jobs of %s: %v", project, err)
	}
	return out
}

func (f *apiFixture) get(t *testing.T, k events.JobKey) *bq.Job {
	t.Helper()
	j, err := f.rest.Jobs.Get(k.Project, k.JobID).Location(k.Location).Do()
	if err != nil {
		t.Fatalf("getting %s: %v", k, err)
	}
	return j
}

func keyOf(r *bq.JobReference) events.JobKey {
	return events.JobKey{Project: r.ProjectId, Location: r.Location, JobID: r.JobId}
}

// observation is what the API said about a job's progress at one moment.
type observation struct {
	state                     string
	slotMs, bytes             int64
	completedUnits, pending   int64
	stages                    []stageProgress
	timeline                  []*bq.QueryTimelineSample
	querySlotMs, lastSlotMs   int64
	reservation, reservation2 string
}

type stageProgress struct {
	Name                                     string
	Status                                   string
	CompletedInputs, Inputs                  int64
	RecordsRead, RecordsWritten, SlotMs      int64
	StartMs, EndMs                           int64
	WaitAvg, WaitMax, ComputeAvg, ComputeMax float64
}

func observe(state string, st *bq.JobStatistics) observation {
	o := observation{state: state, slotMs: st.TotalSlotMs, bytes: st.TotalBytesProcessed, reservation: st.ReservationId}
	if len(st.ReservationUsage) > 0 {
		o.reservation2 = st.ReservationUsage[0].Name
	}
	q := st.Query
	if q == nil {
		return o
	}
	o.querySlotMs, o.timeline = q.TotalSlotMs, q.Timeline
	if n := len(q.Timeline); n > 0 {
		o.completedUnits, o.pending, o.lastSlotMs = q.Timeline[n-1].CompletedUnits, q.Timeline[n-1].PendingUnits, q.Timeline[n-1].TotalSlotMs
	}
	for _, s := range q.QueryPlan {
		o.stages = append(o.stages, stageProgress{s.Name, s.Status, s.CompletedParallelInputs, s.ParallelInputs,
			s.RecordsRead, s.RecordsWritten, s.SlotMs, s.StartMs, s.EndMs, s.WaitRatioAvg, s.WaitRatioMax, s.ComputeRatioAvg, s.ComputeRatioMax})
	}
	return o
}

// shrinks returns what of b is below a, though b was observed later.
func shrinks(a, b observation) []string {
	var out []string
	check := func(name string, before, after int64) {
		if after < before {
			out = append(out, name)
		}
	}
	check("totalSlotMs", a.slotMs, b.slotMs)
	check("completedUnits", a.completedUnits, b.completedUnits)
	check("stages", int64(len(a.stages)), int64(len(b.stages)))
	check("timeline samples", int64(len(a.timeline)), int64(len(b.timeline)))
	if b.state != "DONE" {
		check("totalBytesProcessed", a.bytes, b.bytes)
	}
	for i := range min(len(a.stages), len(b.stages)) {
		s, t := a.stages[i], b.stages[i]
		check(s.Name+" completedParallelInputs", s.CompletedInputs, t.CompletedInputs)
		check(s.Name+" recordsRead", s.RecordsRead, t.RecordsRead)
		check(s.Name+" recordsWritten", s.RecordsWritten, t.RecordsWritten)
		check(s.Name+" slotMs", s.SlotMs, t.SlotMs)
	}
	if n := min(len(a.timeline), len(b.timeline)) - 1; n > 0 && !cmp.Equal(a.timeline[:n], b.timeline[:n]) {
		out = append(out, "earlier timeline samples changed")
	}
	return out
}

// TestJobsAPIStatisticsGrowAndMatchCompletion watches every open job of the
// organization through jobs.list for five minutes, then gets the ones that
// finished: no number may shrink while a job runs, each observation must
// agree with itself, and the final numbers must be those of the job's
// completion entry.
func TestJobsAPIStatisticsGrowAndMatchCompletion(t *testing.T) {
	f := newAPIFixture(t)
	seen := map[events.JobKey][]observation{}
	for range 30 {
		for _, p := range f.org.Projects() {
			for _, j := range f.listOpen(t, p, 7) {
				k := keyOf(j.JobReference)
				seen[k] = append(seen[k], observe(j.State, j.Statistics))
			}
		}
		f.generate(10 * time.Second)
	}
	f.generate(30 * time.Minute)
	var grew, stagesGrew, matched int
	for k, obs := range seen {
		final := f.get(t, k)
		last := observe(final.Status.State, final.Statistics)
		obs = append(obs, last)
		for i := 1; i < len(obs); i++ {
			if s := shrinks(obs[i-1], obs[i]); len(s) > 0 {
				t.Errorf("job %s: %v shrank between observations %d and %d", k, s, i-1, i)
			}
		}
		for i, o := range obs {
			if n := len(o.timeline); n > 0 && (o.lastSlotMs != o.slotMs || o.querySlotMs != o.slotMs) {
				t.Errorf("job %s, observation %d: totalSlotMs %d, query.totalSlotMs %d, last timeline sample %d: want them equal",
					k, i, o.slotMs, o.querySlotMs, o.lastSlotMs)
			}
			if o.reservation2 != "" {
				t.Errorf("job %s: reservationUsage %q, which BigQuery no longer populates", k, o.reservation2)
			}
		}
		if obs[0].slotMs < obs[len(obs)-2].slotMs {
			grew++
		}
		if len(obs[0].stages) < len(obs[len(obs)-2].stages) {
			stagesGrew++
		}
		if ev, ok := f.completed[k]; ok && final.Status.State == "DONE" {
			matched++
			checkFinal(t, k, last, ev)
		}
	}
	if grew < 10 || stagesGrew < 3 || matched < 50 {
		t.Errorf("%d jobs watched: slot-ms grew for %d, the plan for %d, %d matched with their completion; want more of each",
			len(seen), grew, stagesGrew, matched)
	}
}

// checkFinal compares a finished job's last statistics with its completion
// entry's: the same slot-ms, bytes (none for a failed or cancelled job)
// and reservation; every stage and unit of a successful query done.
func checkFinal(t *testing.T, k events.JobKey, last observation, ev events.Event) {
	t.Helper()
	type final struct {
		SlotMs, Bytes int64
		Reservation   string
		PendingUnits  int64
		Incomplete    []string
	}
	got := final{SlotMs: last.slotMs, Bytes: last.bytes, Reservation: last.reservation, PendingUnits: last.pending}
	for _, s := range last.stages {
		if s.Status != "COMPLETE" || s.CompletedInputs != s.Inputs || s.EndMs == 0 {
			got.Incomplete = append(got.Incomplete, s.Name)
		}
	}
	want := final{Reservation: ev.Reservation}
	if ev.SlotMs != nil {
		want.SlotMs = *ev.SlotMs
	}
	if ev.BytesProcessed != nil {
		want.Bytes = *ev.BytesProcessed
	}
	if ev.Reservation == "unreserved" || ev.JobType != events.JobTypeQuery {
		want.Reservation = "" // on demand, or a load's shared pool: no reservation_id
	}
	if ev.Error != nil {
		want.PendingUnits, want.Incomplete = got.PendingUnits, got.Incomplete
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("job %s: final statistics differ from its completion entry (-entry +api):\n%s", k, diff)
	}
}

// TestJobsAPIStatisticsRefreshEveryInterval checks that a running query's
// statistics change only every StatisticsInterval from its start: "For long
// running queries, BigQuery will periodically update these statistics.
// These updates happen independently of the rate at which the job status
// is polled" (https://cloud.google.com/bigquery/docs/query-plan-explanation).
func TestJobsAPIStatisticsRefreshEveryInterval(t *testing.T) {
	for _, every := range []time.Duration{simulation.DefaultStatisticsInterval, 4 * time.Second} {
		t.Run(every.String(), func(t *testing.T) {
			cfg := apiConfig()
			cfg.StatisticsInterval = every
			f := newAPIFixtureWith(t, cfg, 20*time.Minute)
			k, start := f.runningQuery(t, true)
			// Stand just after a refresh, then look twice before the next.
			elapsed := f.org.Now().Sub(start)
			f.generate(every - elapsed%every + every/8)
			before := f.get(t, k)
			f.generate(every / 2)
			same := f.get(t, k)
			if diff := cmp.Diff(before.Statistics, same.Statistics); diff != "" {
				t.Errorf("job %s: statistics changed within one refresh interval (-before +after):\n%s", k, diff)
			}
			f.generate(every / 2)
			after := f.get(t, k)
			if a, b := lastSample(same), lastSample(after); after.Statistics.TotalSlotMs <= same.Statistics.TotalSlotMs || b.ElapsedMs-a.ElapsedMs != every.Milliseconds() {
				t.Errorf("job %s: after the next refresh slot-ms %d -> %d, timeline up to %d -> %d ms: want slot-ms to grow, the timeline by %v",
					k, same.Statistics.TotalSlotMs, after.Statistics.TotalSlotMs, a.ElapsedMs, b.ElapsedMs, every)
			}
		})
	}
}

func lastSample(j *bq.Job) *bq.QueryTimelineSample {
	tl := j.Statistics.Query.Timeline
	if len(tl) == 0 {
		return &bq.QueryTimelineSample{}
	}
	return tl[len(tl)-1]
}

// runningQuery returns the running query with a plan that started first
// (or last), and its start.
func (f *apiFixture) runningQuery(t *testing.T, first bool) (events.JobKey, time.Time) {
	t.Helper()
	var best *bq.JobListJobs
	for _, p := range f.org.Projects() {
		for _, j := range f.listOpen(t, p, 1000) {
			q := j.Statistics.Query
			if j.State == "RUNNING" && q != nil && len(q.QueryPlan) > 0 && j.Statistics.TotalSlotMs > 0 &&
				(best == nil || (j.Statistics.StartTime < best.Statistics.StartTime) == first) {
				best = j
			}
		}
	}
	if best == nil {
		t.Fatal("no running query with a plan")
	}
	return keyOf(best.JobReference), time.UnixMilli(best.Statistics.StartTime)
}

var epoch = time.Unix(0, 0)

// TestJobsAPIQueryPlanGrowsWhileRunning follows a query with jobs.get
// through the official client: its plan gains stages as they start, its
// ratios stay within [0, 1], and its timeline goes on, ending at the job's
// slot-ms.
func TestJobsAPIQueryPlanGrowsWhileRunning(t *testing.T) {
	f := newAPIFixture(t)
	k, _ := f.runningQuery(t, false)
	job, err := f.client.JobFromProject(context.Background(), k.Project, k.JobID, k.Location)
	if err != nil {
		t.Fatal(err)
	}
	var counts []int
	var elapsed []time.Duration // up to the timeline's last sample
	// Follow it for an hour at most.
	for range 60 {
		st, err := job.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		q := st.Statistics.Details.(*bigquery.QueryStatistics)
		if len(counts) == 0 || counts[len(counts)-1] != len(q.QueryPlan) {
			counts = append(counts, len(q.QueryPlan))
		}
		if n := len(q.Timeline); n > 0 {
			elapsed = append(elapsed, q.Timeline[n-1].Elapsed)
			if q.Timeline[n-1].SlotMillis != st.Statistics.TotalSlotDuration.Milliseconds() {
				t.Errorf("timeline ends at %d slot-ms, the job reports %v", q.Timeline[n-1].SlotMillis, st.Statistics.TotalSlotDuration)
			}
		}
		for _, s := range q.QueryPlan {
			if !(0 <= s.WaitRatioAvg && s.WaitRatioAvg <= s.WaitRatioMax && s.WaitRatioMax <= 1 &&
				0 <= s.ComputeRatioAvg && s.ComputeRatioAvg <= s.ComputeRatioMax && s.ComputeRatioMax <= 1) {
				t.Errorf("stage %s: wait ratios %g/%g, compute ratios %g/%g: want 0 <= avg <= max <= 1",
					s.Name, s.WaitRatioAvg, s.WaitRatioMax, s.ComputeRatioAvg, s.ComputeRatioMax)
			}
			// The client turns an absent time into the epoch.
			if !s.StartTime.After(epoch) || (s.Status == "COMPLETE") != s.EndTime.After(epoch) {
				t.Errorf("stage %s %s: start %v, end %v: want a start, and an end once complete", s.Name, s.Status, s.StartTime, s.EndTime)
			}
		}
		if st.Done() {
			break
		}
		f.generate(time.Minute)
	}
	if len(counts) < 2 || !slices.IsSorted(counts) {
		t.Errorf("job %s: stage counts over its run %v: want them to grow", k, counts)
	}
	if len(elapsed) < 2 || !slices.IsSorted(elapsed) || elapsed[0] == elapsed[len(elapsed)-1] {
		t.Errorf("job %s: its timeline ended at %v over its run: want it to go on", k, elapsed)
	}
}

// TestJobsAPIGetNeedsTheLocationOutsideUSAndEU pins jobs.get's location
// parameter: "You must specify the location to run the job for the
// following scenarios: If the location to run a job is not in the us or
// the eu multi-regional location; If the job's location is in a single
// region" (https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/get).
func TestJobsAPIGetNeedsTheLocationOutsideUSAndEU(t *testing.T) {
	f := newAPIFixtureWith(t, simulation.Config{Seed: 11, Rate: 3, Projects: 12, Delivery: &simulation.Delivery{}}, 10*time.Minute)
	found := map[bool]bool{} // by whether the location is US or EU
	for k := range f.completed {
		multi := k.Location == "US" || k.Location == "EU"
		if found[multi] {
			continue
		}
		found[multi] = true
		for _, tc := range []struct {
			location string
			want     int
		}{{k.Location, 200}, {"", map[bool]int{true: 200, false: 404}[multi]}} {
			_, err := f.rest.Jobs.Get(k.Project, k.JobID).Location(tc.location).Do()
			if got := statusOf(err); got != tc.want {
				t.Errorf("jobs.get %s with location %q: %d (%v), want %d", k, tc.location, got, err, tc.want)
			}
		}
	}
	if !found[true] || !found[false] {
		t.Fatalf("jobs in multi-regions and single regions found: %v; want both", found)
	}
}
