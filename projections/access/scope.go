package access

import (
	"context"

	"github.com/bqobserver/bqobserver/events"
)

// Scope is what the caller of one request may see of jobs: the one
// visibility filter that every handler listing or showing jobs applies (the
// running list, a job's detail with its timeline, the stream, the summary,
// the 2019-compatible endpoint and the history). A handler derives it once
// per request with ScopeFrom and asks it about each job by the job's
// principal, the account that ran it:
//
//   - Owner restricts the jobs: an own caller sees only those that ran as
//     its own email, and a list, a stream or an aggregate must leave the
//     others out before counting, not after;
//   - HideQuery takes the query text out of the facts of a job or of one of
//     its events when the caller may not read it, and the answer then says
//     that the text is hidden;
//   - SearchesQuery tells a free-text search whether it may look in a job's
//     query text: a search must not match text the caller cannot read.
//
// The zero Scope (no principal) sees nothing.
type Scope struct {
	p Principal
}

// ScopeFrom returns the scope of the principal that the middleware put in
// ctx, or the zero Scope when there is none.
func ScopeFrom(ctx context.Context) Scope {
	p, _ := PrincipalFrom(ctx)
	return ScopeOf(p)
}

// ScopeOf returns the scope of p.
func ScopeOf(p Principal) Scope { return Scope{p: p} }

// Principal returns the caller the scope is for.
func (s Scope) Principal() Principal { return s.p }

// SeesNothing reports whether the caller may see no job at all.
func (s Scope) SeesNothing() bool { return s.p.Role == RoleNone }

// SeesAll reports whether the caller may see every job (a viewer or an
// admin), and so what counts or names the whole organization's.
func (s Scope) SeesAll() bool { return s.p.Role >= RoleViewer }

// Owner returns, for an own caller, the email every job it sees ran as,
// and true; for callers who see every job (or none) it returns false.
func (s Scope) Owner() (string, bool) {
	if s.p.Role == RoleOwn {
		return s.p.Email, true
	}
	return "", false
}

// Sees reports whether the caller may see a job that ran as jobPrincipal.
func (s Scope) Sees(jobPrincipal string) bool { return CanSee(s.p, jobPrincipal) }

// ShowsQuery reports whether the caller may read the query text of a job
// that ran as jobPrincipal.
func (s Scope) ShowsQuery(jobPrincipal string) bool { return ShowQuery(s.p, jobPrincipal) }

// HidesQueries reports whether the caller may be refused the query text of
// some job it sees: a viewer without show_queries, who reads only the text
// of its own jobs (Reader). Admins, viewers with show_queries and own
// callers read the text of every job they see.
func (s Scope) HidesQueries() bool { return s.p.Role == RoleViewer && !s.p.ShowQueries }

// Reader returns the caller's email: a viewer reads the query text of the
// jobs that ran as it even when HidesQueries.
func (s Scope) Reader() string { return s.p.Email }

// SearchesQuery reports whether a free-text search may look in the query
// text of a job that ran as jobPrincipal: exactly when the caller may read
// it.
func (s Scope) SearchesQuery(jobPrincipal string) bool { return s.ShowsQuery(jobPrincipal) }

// HideQuery takes out of f (a job's facts or an event's) the query text,
// the truncation flag included (not the error message: see the package
// doc), when f has one and
// the caller may not read the query of a job that ran as jobPrincipal, and
// reports whether it did: the answer must then say that the text is hidden,
// never show it as empty.
func (s Scope) HideQuery(f *events.Facts, jobPrincipal string) bool {
	if f.Query == "" || s.ShowsQuery(jobPrincipal) {
		return false
	}
	f.Query, f.QueryTruncated = "", false
	return true
}
