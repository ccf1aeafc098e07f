package access

import (
	"context"
	"time"
)

// Principal is the caller of a request, as authenticated and authorized by
// the middleware.
type Principal struct {
	// Email identifies the caller: the token's email, lower case, or
	// "anonymous" in ModeNone.
	Email string `json:"email"`
	// Role is the caller's role in the policy (RoleAdmin in ModeNone).
	Role Role `json:"role"`
	// ShowQueries is set when the caller may read the query text of other
	// people's jobs: admins, and viewers granted show_queries.
	ShowQueries bool `json:"show_queries"`
	// Method is how the caller was authenticated.
	Method Mode `json:"method"`
	// Expires is when the caller's credential expires (zero in ModeNone).
	// A long-lived answer such as an event stream should end by then, so
	// that the client comes back with a fresh credential.
	Expires time.Time `json:"expires,omitzero"`
}

// anonymousEmail is the principal of every request in ModeNone.
const anonymousEmail = "anonymous"

// Anonymous is the principal of every request in ModeNone: an admin.
func Anonymous() Principal {
	return Principal{Email: anonymousEmail, Role: RoleAdmin, ShowQueries: true, Method: ModeNone}
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p. The middleware calls it;
// tests of handlers use it to act as a given caller.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal carried by ctx. Without one it returns
// the zero Principal (RoleNone, which sees nothing) and false.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
