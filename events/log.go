package events

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"cloud.google.com/go/bigtable"
)

// DefaultLogTable is the table a Log uses when its config names none; it is
// also the default of the schema that creates the table.
const DefaultLogTable = "bqobserver-events"

// DefaultMaxBatchRows is the number of rows a Log writes or reads per call
// to Bigtable when its config sets none. An append writes at most three rows
// per event, so a batch of 500 events goes in one call.
const DefaultMaxBatchRows = 2000

// maxBatchRowsLimit is Bigtable's limit of mutations per MutateRows call;
// every row carries at least one.
const maxBatchRowsLimit = 100_000

// LogConfig configures a Log.
type LogConfig struct {
	// Table is the Bigtable table of the log; default DefaultLogTable.
	Table string
	// MaxBatchRows is the number of rows per ApplyBulk call, and per batched
	// read; default DefaultMaxBatchRows. Larger appends are chunked. Chunks
	// are also kept under 3 MiB, below gRPC's default 4 MiB message limit.
	MaxBatchRows int
	// StallTimeout, when positive, gives up a read once Bigtable has sent
	// nothing for that long (ErrUnavailable): a read of one row, a batch
	// of jobs, the open-jobs index, or a shard of a time range. Only the
	// wait for Bigtable counts, not the caller's handling of what it sent,
	// so it bounds a read that is meant to run long (a replay of a month)
	// without a deadline on the whole. 0: reads wait as long as their
	// context lets them.
	StallTimeout time.Duration
	// OnStaleOpenRow, when set, hears of every open-jobs index row whose
	// job key the log refuses now (one written before a rule refused it,
	// such as '/' in a job id): OpenJobs skips the row and removes it, since
	// no job can be listed under it, and says so here, with why the key is
	// refused or why removing it failed (tried again at the next scan).
	OnStaleOpenRow func(rowKey string, err error)
}

// tableIDPattern is Bigtable's rule for table ids.
var tableIDPattern = regexp.MustCompile(`^[_a-zA-Z0-9][-_.a-zA-Z0-9]{0,49}$`)

func (c LogConfig) withDefaults() LogConfig {
	if c.Table == "" {
		c.Table = DefaultLogTable
	}
	if c.MaxBatchRows == 0 {
		c.MaxBatchRows = DefaultMaxBatchRows
	}
	return c
}

// Validate reports every problem of c, with defaults applied.
func (c LogConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	if !tableIDPattern.MatchString(c.Table) {
		errs = append(errs, fmt.Errorf("table %q is not a Bigtable table id (letters, digits, -_. and at most 50 characters)", c.Table))
	}
	if c.MaxBatchRows < 1 || c.MaxBatchRows > maxBatchRowsLimit {
		errs = append(errs, fmt.Errorf("max batch rows %d is outside 1 to %d", c.MaxBatchRows, maxBatchRowsLimit))
	}
	if c.StallTimeout < 0 {
		errs = append(errs, fmt.Errorf("stall timeout %s is negative", c.StallTimeout))
	}
	return errors.Join(errs...)
}

// Log is the event log: append-only and idempotent, in one Bigtable table
// whose row keys (see schema/ROWKEYS.md) serve reading one job's events and
// reading every event of a time range, and keep an index of the jobs that
// may still be running.
//
// Delivery semantics. An event's identity is its ID and Time, and both fix
// where and with which cell timestamp it is stored, so appending an event
// again, in any batch, in any order, rewrites identical cells: a duplicate
// leaves one event. Append returns nil only when every row is durable. When
// it returns an error (or the caller's acknowledgement is lost, or the
// process dies mid-append), any subset of its rows may be durable; appending
// the same events again completes them, so callers retry until Append
// succeeds and only then acknowledge. The rows of one Append are written
// open-index entries first and index removals last, in calls of their own
// once every other row is durable, so an append that stops half-way never
// leaves a running job's durable events unindexed, nor a job out of the
// index before its DONE event is durable.
//
// A Log is safe for concurrent use. It needs no admin rights: the table and
// its families are created by the schema package.
type Log struct {
	tbl     *bigtable.Table
	table   string
	maxRows int
	stall   time.Duration                  // LogConfig.StallTimeout
	onStale func(rowKey string, err error) // LogConfig.OnStaleOpenRow
}

// NewLog returns a Log on client's table cfg.Table.
func NewLog(client *bigtable.Client, cfg LogConfig) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuring the event log: %w", err)
	}
	if client == nil {
		return nil, errors.New("configuring the event log: no Bigtable client")
	}
	cfg = cfg.withDefaults()
	return &Log{tbl: client.Open(cfg.Table), table: cfg.Table, maxRows: cfg.MaxBatchRows, stall: cfg.StallTimeout, onStale: cfg.OnStaleOpenRow}, nil
}

// Append writes evs durably and idempotently: appending the same event twice
// leaves one event. It returns only after every row is durable, checking the
// outcome of each row. It first checks every event and writes nothing if any
// is unfit for the log (an error matching ErrInvalid: Event.Validate fails,
// its time is outside 1970 to 2262, or its keys exceed Bigtable's limits).
// Failures of Bigtable (unreachable, deadline, quota, a missing table or
// family, missing permissions) match ErrUnavailable: they are never the
// events' fault and succeed when retried once the backend is back. The
// Bigtable client itself retries unavailable and aborted calls until ctx
// ends, so callers bound ctx; its end also matches ErrUnavailable.
func (l *Log) Append(ctx context.Context, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	if err := checkAppend(evs); err != nil {
		return fmt.Errorf("appending %d events: %w: %w", len(evs), ErrInvalid, err)
	}
	rows, err := buildRows(evs)
	if err != nil {
		return fmt.Errorf("appending %d events: %w", len(evs), err)
	}
	if err := l.apply(ctx, rows); err != nil {
		return fmt.Errorf("appending %d events to Bigtable table %s: %w", len(evs), l.table, err)
	}
	return nil
}

// JobEvents returns one job's events ordered by (Time, ID): one row read.
// A job without events returns none and no error.
func (l *Log) JobEvents(ctx context.Context, key JobKey) ([]Event, error) {
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("reading the events of job %s: %w: %w", key, ErrInvalid, err)
	}
	row, err := l.readRow(ctx, jobRowKey(key))
	if err != nil {
		return nil, fmt.Errorf("reading the events of job %s: %w", key, backendError(ctx, err))
	}
	evs, err := decodeRow(row, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the events of job %s: %w", key, err)
	}
	return evs, nil
}

// JobDone reports whether the log has a DONE event of the job, without
// reading its events: Bigtable matches the stored values and sends at most
// one cell, without its value. A reader that only needs to know whether a
// long-running job finished (the history, for each progress sample) asks
// this instead of reading every event of the job.
func (l *Log) JobDone(ctx context.Context, key JobKey) (bool, error) {
	if err := key.Validate(); err != nil {
		return false, fmt.Errorf("reading whether job %s is done: %w: %w", key, ErrInvalid, err)
	}
	row, err := l.readRow(ctx, jobRowKey(key), bigtable.RowFilter(doneFilter))
	if err != nil {
		return false, fmt.Errorf("reading whether job %s is done: %w", key, backendError(ctx, err))
	}
	return len(row[familyEvents]) > 0, nil
}

// doneFilter keeps one event cell, stripped of its value, whose event is
// DONE: its stored JSON has the top-level "state":"DONE" (quotes inside a
// string value are escaped, so no text of the event can imitate it).
var doneFilter = bigtable.ChainFilters(eventsFilter,
	bigtable.ValueFilter(`.*"state":"`+string(StateDone)+`".*`),
	bigtable.CellsPerRowLimitFilter(1),
	bigtable.StripValueFilter())

// ReadJobs reads the events of many jobs in few round trips (batched
// RowList reads of MaxBatchRows rows), calling fn once per job that has
// events, with that job's events ordered by (Time, ID). Jobs come in no
// particular order; repeated keys are read once. fn is never called
// concurrently; an error from fn stops the read and is returned. evs is
// fn's only until it returns: the next job's events are decoded into the
// same array, so fn keeps copies of the events it keeps (their strings,
// maps and slices are never reused), never evs or a pointer into it.
func (l *Log) ReadJobs(ctx context.Context, keys []JobKey, fn func(JobKey, []Event) error) error {
	rows, err := jobRowKeys(keys)
	if err != nil {
		return fmt.Errorf("reading the events of %d jobs: %w: %w", len(keys), ErrInvalid, err)
	}
	return l.readJobRows(ctx, rows, fn)
}

// Range calls fn for every event whose Time is in [from, to), in (Time, ID)
// order: the time rows of every shard are scanned in parallel and merged.
// An error from fn stops the scan and is returned.
func (l *Log) Range(ctx context.Context, from, to time.Time, fn func(Event) error) error {
	if !from.Before(to) {
		return nil
	}
	if err := l.mergeShards(ctx, from, to, fn); err != nil {
		return fmt.Errorf("reading events from %s to %s: %w", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), err)
	}
	return nil
}

// OpenJobs calls fn for every job that may not be DONE, from the open-jobs
// index. Its cost is in proportion to the index, not to history. The index
// is a superset of the running jobs: every event that is not DONE adds its
// job and only a DONE event or PruneOpen removes it, so a job that got a
// late event after its DONE one is listed until the caller, having folded
// it, prunes it. fn is never called concurrently; an error from fn stops the
// scan and is returned. A row whose key is not a job key is skipped and
// removed (LogConfig.OnStaleOpenRow).
func (l *Log) OpenJobs(ctx context.Context, fn func(JobKey) error) error {
	if err := l.scanOpen(ctx, fn); err != nil {
		return fmt.Errorf("listing open jobs: %w", err)
	}
	return nil
}

// PruneOpen removes the index entries of jobs the caller has folded and
// found DONE. DONE is terminal, so removing a DONE job is always safe; a
// key that has no entry is ignored. Errors are classified as Append's.
func (l *Log) PruneOpen(ctx context.Context, keys []JobKey) error {
	if err := l.pruneOpen(ctx, keys); err != nil {
		return fmt.Errorf("pruning %d open jobs: %w", len(keys), err)
	}
	return nil
}
