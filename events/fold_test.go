package events

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var key = JobKey{Project: "p", Location: "US", JobID: "job_1"}

func at(sec int) time.Time { return time.Date(2026, 11, 1, 12, 0, sec, 0, time.UTC) }

func TestFold(t *testing.T) {
	inserted := Event{ID: AuditEventID("log", "a", 0), Kind: KindInserted, Job: key, Time: at(0), State: StateRunning,
		Facts: Facts{Principal: "ann@example.com", JobType: JobTypeQuery, Query: "SELECT 1", CreateTime: at(0), StartTime: at(0)}}
	progress := Event{ID: DerivedEventID("progress", "1"), Kind: KindProgress, Job: key, Time: at(30), State: StateRunning,
		Facts: Facts{SlotMs: Int64(500), Progress: Progress{CompletedUnits: Int64(3), PendingUnits: Int64(7)}}}
	completed := Event{ID: AuditEventID("log", "b", 0), Kind: KindCompleted, Job: key, Time: at(10), State: StateDone,
		Facts: Facts{Principal: "ann@example.com", EndTime: at(9), SlotMs: Int64(900), BytesBilled: Int64(10485760)}}
	failed := completed
	failed.ID = AuditEventID("log", "c", 0)
	failed.Error = &JobError{Code: "3", Message: "Syntax error"}
	truncated := inserted
	truncated.ID = AuditEventID("log", "d", 0)
	truncated.Time = at(20)
	truncated.Query, truncated.QueryTruncated = "SELECT", true

	tests := []struct {
		name string
		evs  []Event
		want func(j *Job)
	}{
		{"insert only", []Event{inserted}, func(j *Job) {
			j.State, j.Principal, j.JobType, j.Query = StateRunning, "ann@example.com", JobTypeQuery, "SELECT 1"
			j.CreateTime, j.StartTime, j.FirstSeen, j.LastSeen = at(0), at(0), at(0), at(0)
		}},
		{"late insert never resurrects", []Event{completed, inserted}, func(j *Job) {
			j.State, j.Principal, j.JobType, j.Query = StateDone, "ann@example.com", JobTypeQuery, "SELECT 1"
			j.CreateTime, j.StartTime, j.EndTime, j.FirstSeen, j.LastSeen = at(0), at(0), at(9), at(0), at(10)
			j.SlotMs, j.BytesBilled = Int64(900), Int64(10485760)
		}},
		{"final stats beat a later progress sample", []Event{inserted, completed, progress}, func(j *Job) {
			j.State, j.Principal, j.JobType, j.Query = StateDone, "ann@example.com", JobTypeQuery, "SELECT 1"
			j.CreateTime, j.StartTime, j.EndTime, j.FirstSeen, j.LastSeen = at(0), at(0), at(9), at(0), at(30)
			j.SlotMs, j.BytesBilled = Int64(900), Int64(10485760)
			j.CompletedUnits, j.PendingUnits = Int64(3), Int64(7)
		}},
		{"failure keeps its error", []Event{failed, inserted}, func(j *Job) {
			j.State, j.Error, j.Principal, j.JobType, j.Query = StateDone, &JobError{Code: "3", Message: "Syntax error"}, "ann@example.com", JobTypeQuery, "SELECT 1"
			j.CreateTime, j.StartTime, j.EndTime, j.FirstSeen, j.LastSeen = at(0), at(0), at(9), at(0), at(10)
			j.SlotMs, j.BytesBilled = Int64(900), Int64(10485760)
		}},
		{"complete query beats a later truncated one", []Event{truncated, inserted}, func(j *Job) {
			j.State, j.Principal, j.JobType, j.Query = StateRunning, "ann@example.com", JobTypeQuery, "SELECT 1"
			j.CreateTime, j.StartTime, j.FirstSeen, j.LastSeen = at(0), at(0), at(0), at(20)
		}},
		{"other jobs are ignored", []Event{inserted, {ID: "x", Kind: KindCompleted, Job: JobKey{"p", "US", "other"}, Time: at(5), State: StateDone}}, func(j *Job) {
			j.State, j.Principal, j.JobType, j.Query = StateRunning, "ann@example.com", JobTypeQuery, "SELECT 1"
			j.CreateTime, j.StartTime, j.FirstSeen, j.LastSeen = at(0), at(0), at(0), at(0)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Fold(key, tt.evs)
			want := Job{Key: key}
			tt.want(&want)
			if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Job{})); diff != "" {
				t.Errorf("Fold() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// diffJobs compares two jobs whole: their fields, and the stamp of the
// event that wrote each register, on which the jobs' futures depend.
func diffJobs(want, got Job) string {
	return cmp.Diff(want, got, cmpopts.IgnoreUnexported(Job{})) +
		cmp.Diff(registers(&want), registers(&got), cmp.AllowUnexported(stamp{}))
}

// registers returns the stamps of the writers of j's registers.
func registers(j *Job) [numRegisters]stamp {
	var out [numRegisters]stamp
	for i, r := range j.regs {
		if r != 0 {
			out[i] = *j.writers.at(r)
		}
	}
	return out
}

// TestFoldOrderIndependent is the fold's defining property: any permutation
// of the same events, with any duplicates, folds to the same state.
func TestFoldOrderIndependent(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 7))
		evs := randomEvents(r)
		want := Fold(key, evs)
		for range 20 {
			perm := shuffledWithDuplicates(r, evs)
			got := Fold(key, perm)
			if diff := diffJobs(want, got); diff != "" {
				t.Fatalf("seed %d: permutation folds differently (-want +got):\n%s", seed, diff)
			}
		}
	}
}

func randomEvents(r *rand.Rand) []Event {
	kinds := []Kind{KindInserted, KindStateChanged, KindProgress, KindCompleted, KindReconciled, KindCancelRequested}
	states := []State{StatePending, StateRunning, StateDone, StateUnknown}
	n := 1 + r.IntN(8)
	evs := make([]Event, n)
	for i := range evs {
		e := Event{ID: DerivedEventID("e", string(rune('a'+i))), Kind: kinds[r.IntN(len(kinds))], Job: key,
			// Few distinct times, so that ties are common.
			Time: at(r.IntN(3)), State: states[r.IntN(len(states))]}
		pick := func(vs ...string) string { return vs[r.IntN(len(vs))] }
		e.Principal = pick("", "a@x", "b@x")
		e.StatementType = pick("", "SELECT", "MERGE")
		e.Query, e.QueryTruncated = pick("", "SELECT 1", "SELECT 2"), r.IntN(2) == 0
		e.Reservation = pick("", "unreserved", "prod")
		if r.IntN(2) == 0 {
			e.SlotMs = Int64(r.Int64N(3))
		}
		if r.IntN(3) == 0 {
			e.Labels = map[string]string{"team": pick("a", "b")}
		}
		if r.IntN(3) == 0 {
			e.ReferencedTables = []string{pick("p.d.t", "p.d.u")}
		}
		if r.IntN(4) == 0 {
			e.Error = &JobError{Code: pick("3", "5"), Message: pick("x", "y")}
		}
		if r.IntN(3) == 0 {
			e.CacheHit = Bool(r.IntN(2) == 0)
		}
		e.EndTime = []time.Time{{}, at(1), at(2)}[r.IntN(3)]
		evs[i] = e
	}
	return evs
}

func shuffledWithDuplicates(r *rand.Rand, evs []Event) []Event {
	var out []Event
	for _, e := range evs {
		for range 1 + r.IntN(3) {
			out = append(out, e)
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func TestFoldDoneIsTerminal(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 11))
		evs := randomEvents(r)
		done := false
		for _, e := range evs {
			done = done || e.State == StateDone
		}
		if got := Fold(key, evs); done != got.Done() {
			t.Fatalf("seed %d: Done() = %v with a DONE event present = %v", seed, got.Done(), done)
		}
	}
}
