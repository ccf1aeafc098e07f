package access

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
)

// TestScope: what each role's scope lets it see of alice's job, and what
// its answers keep of the job's query text.
func TestScope(t *testing.T) {
	type seen struct {
		SeesNothing, Sees, ShowsQuery, HidesQueries bool
		Owner                                       string
		Hidden                                      bool
		Query                                       string
		Truncated                                   bool
	}
	for _, tc := range []struct {
		name string
		p    Principal
		want seen
	}{
		{"admin", Principal{Email: "carol@acme.example", Role: RoleAdmin, ShowQueries: true},
			seen{Sees: true, ShowsQuery: true, Query: "SELECT 1", Truncated: true}},
		{"viewer", Principal{Email: "bob@acme.example", Role: RoleViewer},
			seen{Sees: true, HidesQueries: true, Hidden: true}},
		{"viewer with show_queries", Principal{Email: "dba@acme.example", Role: RoleViewer, ShowQueries: true},
			seen{Sees: true, ShowsQuery: true, Query: "SELECT 1", Truncated: true}},
		{"viewer of its own job", Principal{Email: "ALICE@acme.example", Role: RoleViewer},
			seen{Sees: true, ShowsQuery: true, HidesQueries: true, Query: "SELECT 1", Truncated: true}},
		{"own, its own job", Principal{Email: "alice@acme.example", Role: RoleOwn},
			seen{Sees: true, ShowsQuery: true, Owner: "alice@acme.example", Query: "SELECT 1", Truncated: true}},
		{"own, another's job", Principal{Email: "dana@acme.example", Role: RoleOwn},
			seen{Owner: "dana@acme.example", Hidden: true}},
		{"no role", Principal{Email: "mallory@evil.example"}, seen{SeesNothing: true, Hidden: true}},
		{"no principal", Principal{}, seen{SeesNothing: true, Hidden: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ScopeOf(tc.p)
			f := events.Facts{Principal: "alice@acme.example", Query: "SELECT 1", QueryTruncated: true}
			got := seen{SeesNothing: s.SeesNothing(), Sees: s.Sees(f.Principal), ShowsQuery: s.ShowsQuery(f.Principal), HidesQueries: s.HidesQueries()}
			got.Owner, _ = s.Owner()
			got.Hidden = s.HideQuery(&f, f.Principal)
			got.Query, got.Truncated = f.Query, f.QueryTruncated
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("scope (-want +got):\n%s", diff)
			}
		})
	}
}

// A job without query text has nothing to hide, so it is not said to be
// hidden.
func TestScopeNothingToHide(t *testing.T) {
	f := events.Facts{Principal: "alice@acme.example", JobType: "LOAD"}
	if ScopeOf(Principal{Email: "bob@acme.example", Role: RoleViewer}).HideQuery(&f, f.Principal) {
		t.Error("a load job's absent query text is said to be hidden")
	}
}
