package access

import "strings"

// CanSee reports whether p may see a job whose principal (the account that
// ran it) is jobPrincipal: admins and viewers see every job, own callers
// only jobs that ran as their own email (compared without regard to case;
// a job with no known principal is nobody's own).
func CanSee(p Principal, jobPrincipal string) bool {
	switch p.Role {
	case RoleAdmin, RoleViewer:
		return true
	case RoleOwn:
		return isOwn(p, jobPrincipal)
	default:
		return false
	}
}

// ShowQuery reports whether p may read the query text of a job whose
// principal is jobPrincipal: admins always, viewers for their own jobs or
// when granted show_queries, own callers for their own jobs (the only ones
// they see). When it reports false the text must read as hidden, never as
// empty (see the package documentation).
func ShowQuery(p Principal, jobPrincipal string) bool {
	switch p.Role {
	case RoleAdmin:
		return true
	case RoleViewer:
		return p.ShowQueries || isOwn(p, jobPrincipal)
	case RoleOwn:
		return isOwn(p, jobPrincipal)
	default:
		return false
	}
}

// CanCancel reports whether p may cancel jobs: admins only.
func CanCancel(p Principal) bool {
	return p.Role == RoleAdmin
}

// isOwn reports whether the job ran as p.
func isOwn(p Principal, jobPrincipal string) bool {
	return jobPrincipal != "" && strings.EqualFold(p.Email, jobPrincipal)
}
