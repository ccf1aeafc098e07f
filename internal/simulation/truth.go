package simulation

import (
	"slices"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// JobTruth is what really happened to a job, as the simulation knows it:
// what a test compares the product's view with, whatever the entries and
// the jobs API let it see. Times are at the millisecond, as BigQuery
// reports them, and zero until they happen.
type JobTruth struct {
	Job events.JobKey
	// ParentJobID is the script a statement's job belongs to, or "".
	ParentJobID string
	State       events.State
	Created     time.Time
	Started     time.Time
	Ended       time.Time
	// LostCompletion is set for a top-level job whose completion entries
	// never arrive: only the jobs API tells that it ended.
	LostCompletion bool
}

func (j *job) truth() JobTruth {
	t := JobTruth{
		Job: j.key, State: j.state, LostCompletion: j.lost && j.parent == nil,
		Created: jobTime(j.created), Started: jobTime(j.started), Ended: jobTime(j.ended),
	}
	if j.parent != nil {
		t.ParentJobID = j.parent.key.JobID
	}
	return t
}

// Job returns what happened to the job so far, as of the simulation's
// current time. It reports false for a job the simulation never ran or
// has forgotten (see Config.Retention).
func (o *Org) Job(key events.JobKey) (JobTruth, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.syncNow()
	j := o.jobs[key]
	if j == nil {
		return JobTruth{}, false
	}
	return j.truth(), true
}

// LostCompletions returns the jobs that ended and whose completion entries
// were lost, in the order they ended, forgotten ones included: the jobs
// that only reconciliation with the jobs API can close.
func (o *Org) LostCompletions() []JobTruth {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.syncNow()
	return slices.Clone(o.lost)
}
