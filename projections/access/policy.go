package access

import (
	"fmt"
	"os"
	"strings"
)

// Policy maps callers to grants. It is read once at start with LoadPolicy or
// ParsePolicy, is immutable, and is safe for concurrent use. The nil Policy
// grants nothing.
type Policy struct {
	entries []entry
}

// entry is one item of the policy's roles list.
type entry struct {
	grant   Grant
	members []member
}

// Resolve returns the most privileged grant of every entry that names the
// caller whose email and hosted domain (the Google Workspace or Cloud
// Identity domain that manages the account: the token's hd claim, empty for
// an account no domain manages) are given, compared without regard to
// case, or the zero Grant (RoleNone) when none does.
func (p *Policy) Resolve(email, hostedDomain string) Grant {
	var best Grant
	if p == nil || email == "" {
		return best
	}
	email, hostedDomain = strings.ToLower(email), strings.ToLower(hostedDomain)
	for _, e := range p.entries {
		if e.grant.outranks(best) && e.names(email, hostedDomain) {
			best = e.grant
		}
	}
	return best
}

// names reports whether one of the entry's members matches the caller.
func (e entry) names(email, hostedDomain string) bool {
	for _, m := range e.members {
		if m.matches(email, hostedDomain) {
			return true
		}
	}
	return false
}

// LoadPolicy reads and checks the policy file at path; see ParsePolicy.
func LoadPolicy(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	return ParsePolicy(path, data)
}

// PolicyError is one problem of a policy file, at a line (0 when the YAML
// parser does not say which).
type PolicyError struct {
	File   string
	Line   int
	Reason string
}

// Error returns "file:line: reason".
func (e *PolicyError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Reason
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
}
