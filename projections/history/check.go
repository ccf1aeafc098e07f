package history

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/jobfields"
)

// Difference is a job whose row in the jobs view is not the fold of its
// events in the log.
type Difference struct {
	Job events.JobKey
	// Missing is set when the view has no row of the job.
	Missing bool
	// Columns are the columns that differ.
	Columns []ColumnDiff
}

// ColumnDiff is a column whose value in BigQuery is not the log's.
type ColumnDiff struct {
	Column   string
	Log      any
	BigQuery any
}

// CheckStats counts what Check compared.
type CheckStats struct {
	Jobs      int // jobs with an event in the range of the log
	Missing   int // of them, without a row in the view
	Different int // of them, whose row differs
}

// Checker compares the history in BigQuery with the log.
type Checker struct {
	log  Log
	view View
	v    *versioner
}

// NewChecker returns a checker of view against log, deriving the history's
// columns as a sink of cfg would.
func NewChecker(cfg Config, log Log, view View) (*Checker, error) {
	v, err := newVersioner(cfg)
	if err != nil {
		return nil, fmt.Errorf("configuring the history check: %w", err)
	}
	return &Checker{log: log, view: view, v: v}, nil
}

// Check compares, for every job with an event in [from, to) of the log (of
// project only, when it is set), the fold of its events that the sink
// promises to have written (see promised) with its row in the jobs view:
// every column but version_time. It returns the jobs missing from the view
// or different there, by key. A job whose latest events are still on their
// way to the sink shows as different until they arrive.
//
// It holds the keys of the range's jobs and checkBatch rows at a time, not
// the range's rows: the view's rows arrive in key order and are joined
// with the sorted keys as they come, and each batch's events are read from
// the log at once.
func (c *Checker) Check(ctx context.Context, from, to time.Time, project string) (CheckStats, []Difference, error) {
	keys, _, err := jobsIn(ctx, c.log, from, to, project)
	if err != nil {
		return CheckStats{}, nil, err
	}
	stats := CheckStats{Jobs: len(keys)}
	var diffs []Difference
	batch := make(map[events.JobKey]Row, checkBatch)
	var batchKeys []events.JobKey
	flush := func() error {
		if len(batchKeys) == 0 {
			return nil
		}
		err := c.log.ReadJobs(ctx, batchKeys, func(key events.JobKey, evs []events.Event) error {
			got := batch[key]
			j, d := c.promised(key, evs, got[eventCountColumn])
			want := values(c.v.rows.message(&j, &d), c.v.rows.schema)
			if cols := differences(want, got, c.v.rows.schema, versionTimeColumn); len(cols) > 0 {
				diffs = append(diffs, Difference{Job: key, Columns: cols})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reading the jobs to check: %w", err)
		}
		clear(batch)
		batchKeys = batchKeys[:0]
		return nil
	}
	missing := func(k events.JobKey) { diffs = append(diffs, Difference{Job: k, Missing: true}) }
	next := 0 // keys[next:] are the jobs no row has been read for yet
	err = c.view.Jobs(ctx, from, to, project, func(row Row) error {
		k := keyOf(row)
		for ; next < len(keys) && compareKeys(keys[next], k) < 0; next++ {
			missing(keys[next])
		}
		if next == len(keys) || compareKeys(keys[next], k) != 0 {
			return nil // a row of a job with no event in the range
		}
		next++
		batch[k] = row
		batchKeys = append(batchKeys, k)
		if len(batchKeys) == checkBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return CheckStats{}, nil, err
	}
	if err := flush(); err != nil {
		return CheckStats{}, nil, err
	}
	for ; next < len(keys); next++ {
		missing(keys[next])
	}
	slices.SortFunc(diffs, func(a, b Difference) int { return compareKeys(a.Job, b.Job) })
	for _, d := range diffs {
		if d.Missing {
			stats.Missing++
		} else {
			stats.Different++
		}
	}
	return stats, diffs, nil
}

// checkBatch is how many jobs Check reads from the log at once: the log's
// batched read.
const checkBatch = 1000

// versionTimeColumn is when a version was written: it differs between
// versions of the same content, so Check does not compare it.
var versionTimeColumn = columns[len(columns)-1]

// eventCountColumn is how many events a version folds.
var eventCountColumn = historyColumn("EventCount")

// historyColumn returns the column of the derived value named name.
func historyColumn(name string) string {
	i := slices.IndexFunc(jobfields.HistoryColumns, func(c jobfields.HistoryColumn) bool { return c.Name == name })
	return jobfields.HistoryColumns[i].Column.Name
}

// promised returns the version of a job its latest row must be, from evs,
// all its events in the log in (Time, ID) order, and count, the row's
// event_count. A finished job's row folds them all. The sink writes no row
// for a progress sample of a running job, so a running job's row folds
// every other event, and of the progress samples after the last of them
// only those the log had when the sink read it: as many as the row counts
// (all of them, after a replay).
func (c *Checker) promised(key events.JobKey, evs []events.Event, count any) (events.Job, Derived) {
	j, d := c.v.version(key, evs)
	if j.Done() {
		return j, d
	}
	k := len(evs)
	for k > 0 && evs[k-1].Kind == events.KindProgress {
		k--
	}
	if n, _ := count.(int64); n > int64(k) && n <= int64(len(evs)) {
		k = int(n)
	}
	return c.v.version(key, evs[:k])
}

// jobsIn returns the jobs with an event in [from, to) of the log, of
// project only when it is set, in key order, and how many events it read.
func jobsIn(ctx context.Context, log Log, from, to time.Time, project string) ([]events.JobKey, int, error) {
	seen := map[events.JobKey]struct{}{}
	n := 0
	err := log.Range(ctx, from, to, func(e events.Event) error {
		n++
		if project == "" || e.Job.Project == project {
			seen[e.Job] = struct{}{}
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("listing the jobs of the log: %w", err)
	}
	keys := make([]events.JobKey, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	return keys, n, nil
}

func compareKeys(a, b events.JobKey) int {
	return cmp.Or(cmp.Compare(a.Project, b.Project), cmp.Compare(a.Location, b.Location), cmp.Compare(a.JobID, b.JobID))
}
