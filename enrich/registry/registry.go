// Package registry keeps what enrichment knows of projects in the event
// log's Bigtable table, so that every replica, and a replica after a
// restart, knows it too: which projects had jobs lately (the slow sweep
// lists them, so that a project whose audit entries stop arriving is still
// polled) and which deny the service a permission of the jobs API (the
// diagnostics every replica serves).
//
// Each project has one row, p#<project> (schema/ROWKEYS.md), in family p,
// whose garbage collection removes a cell 30 days after its last write.
// Writes are idempotent and few: a project's activity is written once a
// day per replica, a denial when it appears and then hourly while it
// lasts, and its removal when the method works again.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/bigtable"

	"github.com/bqobserver/bqobserver/events"
)

// The rows' layout (schema/ROWKEYS.md).
const (
	family       = "p"
	prefix       = "p#"
	activity     = "a"
	denialPrefix = "d:"
)

// refreshDenial is how often a lasting denial is rewritten, so that the
// family's 30-day garbage collection never removes one that still holds,
// and its Checked time stays recent.
const refreshDenial = time.Hour

// Registry is the project registry. It is safe for concurrent use.
type Registry struct {
	tbl *bigtable.Table

	mu      sync.Mutex
	touched map[string]time.Time // project → the day last written
	denied  map[denialKey]Denial // as last written or read
}

type denialKey struct{ project, method string }

// New returns the registry in client's table.
func New(client *bigtable.Client, table string) (*Registry, error) {
	if client == nil || table == "" {
		return nil, errors.New("configuring the project registry: a Bigtable client and a table are needed")
	}
	return &Registry{tbl: client.Open(table), touched: map[string]time.Time{}, denied: map[denialKey]Denial{}}, nil
}

// day is the UTC day of t.
func day(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// Touch records that projects had jobs on the day of t. A project already
// recorded for that day by this registry is not written again.
func (r *Registry) Touch(ctx context.Context, projects []string, t time.Time) error {
	d := day(t)
	var keys []string
	var muts []*bigtable.Mutation
	r.mu.Lock()
	for _, p := range projects {
		if !r.touched[p].Before(d) || strings.ContainsAny(p, "#\x00") || p == "" {
			continue
		}
		m := bigtable.NewMutation()
		m.DeleteCellsInColumn(family, activity)
		m.Set(family, activity, bigtable.Now(), []byte(millis(d)))
		keys, muts = append(keys, prefix+p), append(muts, m)
	}
	r.mu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	if err := applyBulk(ctx, r.tbl, keys, muts); err != nil {
		return fmt.Errorf("recording the activity of %d projects: %w", len(keys), err)
	}
	r.mu.Lock()
	for _, k := range keys {
		r.touched[strings.TrimPrefix(k, prefix)] = d
	}
	r.mu.Unlock()
	return nil
}

// Active returns, sorted, the projects that had jobs on the day of since
// or later.
func (r *Registry) Active(ctx context.Context, since time.Time) ([]string, error) {
	var out []string
	d := day(since)
	filter := bigtable.ChainFilters(bigtable.FamilyFilter("^"+family+"$"), bigtable.ColumnFilter("^"+activity+"$"), bigtable.LatestNFilter(1))
	err := r.tbl.ReadRows(ctx, bigtable.PrefixRange(prefix), func(row bigtable.Row) bool {
		for _, c := range row[family] {
			if t, err := parseMillis(string(c.Value)); err == nil && !t.Before(d) {
				out = append(out, strings.TrimPrefix(row.Key(), prefix))
			}
		}
		return true
	}, bigtable.RowFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("listing the projects active since %s: %w", d.Format(time.DateOnly), err)
	}
	slices.Sort(out)
	return out, nil
}

// Denial is a permission of the jobs API that a project denies the
// service.
type Denial struct {
	Project    string `json:"-"`
	Method     string `json:"-"`
	Permission string `json:"permission"`
	// Message is the API's own words.
	Message string `json:"message"`
	// Since is when the denial was first seen, Checked when last.
	Since   time.Time `json:"since"`
	Checked time.Time `json:"checked"`
}

// Deny records that d.Project denies d.Method, keeping the Since of an
// earlier record. It writes when the denial is new, its permission or
// message changed, or it was last written an hour or more ago.
func (r *Registry) Deny(ctx context.Context, d Denial) error {
	k := denialKey{d.Project, d.Method}
	r.mu.Lock()
	prev, ok := r.denied[k]
	r.mu.Unlock()
	if ok {
		if prev.Permission == d.Permission && prev.Message == d.Message && d.Checked.Sub(prev.Checked) < refreshDenial {
			return nil
		}
		d.Since = prev.Since
	}
	value, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("recording the denial of %s on %s: %w", d.Method, d.Project, err)
	}
	m := bigtable.NewMutation()
	m.DeleteCellsInColumn(family, denialPrefix+d.Method)
	m.Set(family, denialPrefix+d.Method, bigtable.Now(), value)
	if err := r.tbl.Apply(ctx, prefix+d.Project, m); err != nil {
		return fmt.Errorf("recording the denial of %s on %s: %w", d.Method, d.Project, err)
	}
	r.mu.Lock()
	r.denied[k] = d
	r.mu.Unlock()
	return nil
}

// Allow removes the denial of method on project, if this registry knows
// of one (it knows what it wrote and what Denials last read).
func (r *Registry) Allow(ctx context.Context, project, method string) error {
	k := denialKey{project, method}
	r.mu.Lock()
	_, ok := r.denied[k]
	r.mu.Unlock()
	if !ok {
		return nil
	}
	m := bigtable.NewMutation()
	m.DeleteCellsInColumn(family, denialPrefix+method)
	if err := r.tbl.Apply(ctx, prefix+project, m); err != nil {
		return fmt.Errorf("removing the denial of %s on %s: %w", method, project, err)
	}
	r.mu.Lock()
	delete(r.denied, k)
	r.mu.Unlock()
	return nil
}

// Denials returns every recorded denial, by project then method.
func (r *Registry) Denials(ctx context.Context) ([]Denial, error) {
	var out []Denial
	var bad error
	filter := bigtable.ChainFilters(bigtable.FamilyFilter("^"+family+"$"), bigtable.ColumnFilter("^"+denialPrefix+".*$"), bigtable.LatestNFilter(1))
	err := r.tbl.ReadRows(ctx, bigtable.PrefixRange(prefix), func(row bigtable.Row) bool {
		for _, c := range row[family] {
			var d Denial
			if err := json.Unmarshal(c.Value, &d); err != nil {
				bad = fmt.Errorf("row %s, column %s: %w", row.Key(), c.Column, err)
				return false
			}
			d.Project = strings.TrimPrefix(row.Key(), prefix)
			d.Method = strings.TrimPrefix(c.Column, family+":"+denialPrefix)
			out = append(out, d)
		}
		return true
	}, bigtable.RowFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("reading the recorded denials: %w", events.BackendError(ctx, err))
	}
	if bad != nil {
		return nil, fmt.Errorf("reading the recorded denials: %w", bad)
	}
	r.remember(out)
	return out, nil
}

// remember replaces what the registry knows of denials with ds, as read.
func (r *Registry) remember(ds []Denial) {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.denied)
	for _, d := range ds {
		r.denied[denialKey{d.Project, d.Method}] = d
	}
}

// applyBulk writes rows, checking every row's outcome.
func applyBulk(ctx context.Context, tbl *bigtable.Table, keys []string, muts []*bigtable.Mutation) error {
	errs, err := tbl.ApplyBulk(ctx, keys, muts)
	if err != nil {
		return err
	}
	var failed []error
	for i, e := range errs {
		if e != nil {
			failed = append(failed, fmt.Errorf("row %s: %w", keys[i], e))
		}
	}
	return errors.Join(failed...)
}

func millis(t time.Time) string { return fmt.Sprintf("%016d", max(0, t.UnixMilli())) }

func parseMillis(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("value %q is not milliseconds: %w", s, err)
	}
	return time.UnixMilli(n), nil
}
