package access

import "fmt"

// Role is what a principal may see and do. Roles are ordered by privilege:
// a greater Role may do everything a lesser one may.
type Role int

// The roles, least privileged first.
const (
	// RoleNone may see nothing: every request is refused with 403.
	RoleNone Role = iota
	// RoleOwn sees only the jobs that ran as its own email.
	RoleOwn
	// RoleViewer sees every job; other people's query text only with
	// show_queries.
	RoleViewer
	// RoleAdmin sees every job with its query text and may cancel jobs.
	RoleAdmin
)

var roleNames = [...]string{RoleNone: "none", RoleOwn: "own", RoleViewer: "viewer", RoleAdmin: "admin"}

// String returns the role's name as the policy file spells it.
func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return fmt.Sprintf("Role(%d)", int(r))
	}
	return roleNames[r]
}

// MarshalText encodes the role as its name.
func (r Role) MarshalText() ([]byte, error) {
	if r < 0 || int(r) >= len(roleNames) {
		return nil, fmt.Errorf("encoding role: unknown role %d", int(r))
	}
	return []byte(roleNames[r]), nil
}

// parseRole returns the grantable role named s (none cannot be granted).
func parseRole(s string) (Role, bool) {
	for r := RoleOwn; r <= RoleAdmin; r++ {
		if roleNames[r] == s {
			return r, true
		}
	}
	return RoleNone, false
}

// Grant is what the policy gives a principal: a role and, for viewers,
// whether they may read other people's query text.
type Grant struct {
	Role        Role
	ShowQueries bool
}

// outranks reports whether g is more privileged than h: admin, then viewer
// with show_queries, then viewer, then own, then nothing.
func (g Grant) outranks(h Grant) bool {
	if g.Role != h.Role {
		return g.Role > h.Role
	}
	return g.ShowQueries && !h.ShowQueries
}
