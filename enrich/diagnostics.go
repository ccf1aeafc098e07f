package enrich

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/bqobserver/bqobserver/enrich/jobsapi"
	"github.com/bqobserver/bqobserver/enrich/registry"
	"github.com/bqobserver/bqobserver/projections/running"
)

// diagnosticsTTL is how long a read of the recorded denials is reused.
const diagnosticsTTL = 5 * time.Second

// diagnostics record the permissions projects deny: in the registry, for
// every replica, when there is one, and in memory.
type diagnostics struct {
	reg projectRegistry
	now func() time.Time

	reads  singleflight.Group // one read of the registry at a time
	mu     sync.Mutex
	local  map[denialKey]registry.Denial
	shared []registry.Denial // nil when nothing is denied
	readAt time.Time         // when shared was read; zero: never
}

type denialKey struct{ project, method string }

func newDiagnostics(reg projectRegistry, now func() time.Time) *diagnostics {
	return &diagnostics{reg: reg, now: now, local: map[denialKey]registry.Denial{}}
}

// observe records what a call's outcome says of the permission it needs:
// a denial, or (an answer or a 404) none. Other failures say nothing.
func (d *diagnostics) observe(ctx context.Context, project, method string, err error) {
	var denied *jobsapi.DeniedError
	switch {
	case errors.As(err, &denied):
		d.deny(ctx, denied)
	case err == nil || errors.Is(err, jobsapi.ErrNotFound):
		d.allow(ctx, project, method)
	}
}

func (d *diagnostics) deny(ctx context.Context, denied *jobsapi.DeniedError) {
	now := d.now()
	k := denialKey{denied.Project, denied.Method}
	rec := registry.Denial{Project: denied.Project, Method: denied.Method, Permission: denied.Permission,
		Message: denied.Message, Since: now, Checked: now}
	d.mu.Lock()
	if prev, ok := d.local[k]; ok {
		rec.Since = prev.Since
	}
	d.local[k] = rec
	d.mu.Unlock()
	if d.reg != nil {
		_ = d.reg.Deny(ctx, rec) // retried at the next call that is denied
	}
}

func (d *diagnostics) allow(ctx context.Context, project, method string) {
	d.mu.Lock()
	delete(d.local, denialKey{project, method})
	d.mu.Unlock()
	if d.reg != nil {
		_ = d.reg.Allow(ctx, project, method) // retried at the next call that succeeds
	}
}

// refresh reads what every replica recorded, so that this one can lift a
// denial another recorded once the project allows it again.
func (d *diagnostics) refresh(ctx context.Context) {
	_, _ = d.read(ctx, true)
}

// read returns every denial: the registry's (read at most every
// diagnosticsTTL unless fresh is set) or, without one, this replica's.
func (d *diagnostics) read(ctx context.Context, fresh bool) ([]registry.Denial, error) {
	d.mu.Lock()
	if d.reg == nil {
		defer d.mu.Unlock()
		out := make([]registry.Denial, 0, len(d.local))
		for _, v := range d.local {
			out = append(out, v)
		}
		return out, nil
	}
	if !fresh && !d.readAt.IsZero() && d.now().Sub(d.readAt) < diagnosticsTTL {
		defer d.mu.Unlock()
		return d.shared, nil
	}
	d.mu.Unlock()
	// Requests that arrive together share one read; it is bounded by the
	// registry's timeout (boundedRegistry), not by the first one's context.
	ch := d.reads.DoChan("denials", func() (any, error) {
		ds, err := d.reg.Denials(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		d.mu.Lock()
		d.shared, d.readAt = ds, d.now()
		d.mu.Unlock()
		return ds, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]registry.Denial), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Diagnostics returns the projects the service cannot see into, with the
// permission each lacks and the grant that fixes it, by project and
// method.
func (e *Enricher) Diagnostics(ctx context.Context) (*running.Diagnostics, error) {
	ds, err := e.diag.read(ctx, false)
	if err != nil {
		return nil, err
	}
	out := &running.Diagnostics{Enrichment: true, CheckedAt: e.cfg.Now().UTC(), Problems: make([]running.Problem, 0, len(ds))}
	for _, d := range ds {
		out.Problems = append(out.Problems, running.Problem{
			Project: d.Project, Method: d.Method, Permission: d.Permission, Role: jobsapi.ViewerRole,
			Fix: jobsapi.Fix(d.Project), Message: d.Message, Since: d.Since.UTC(), Checked: d.Checked.UTC(),
		})
	}
	slices.SortFunc(out.Problems, func(a, b running.Problem) int {
		return cmp.Or(cmp.Compare(a.Project, b.Project), cmp.Compare(a.Method, b.Method))
	})
	return out, nil
}
