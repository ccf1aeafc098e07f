package access

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decisions are the answers of CanSee, ShowQuery and CanCancel for one
// principal and one job.
type decisions struct {
	See, Query, Cancel bool
}

func decide(p Principal, jobPrincipal string) decisions {
	return decisions{See: CanSee(p, jobPrincipal), Query: ShowQuery(p, jobPrincipal), Cancel: CanCancel(p)}
}

func TestDecisions(t *testing.T) {
	const me = "bob@acme.example"
	principals := map[string]Principal{
		"admin":                 {Email: me, Role: RoleAdmin, ShowQueries: true},
		"viewer":                {Email: me, Role: RoleViewer},
		"viewer with queries":   {Email: me, Role: RoleViewer, ShowQueries: true},
		"own":                   {Email: me, Role: RoleOwn},
		"own granted queries":   {Email: me, Role: RoleOwn, ShowQueries: true},
		"none":                  {Email: me},
		"anonymous (mode none)": Anonymous(),
		"zero (no principal)":   {},
	}
	jobs := map[string]string{
		"own job":             me,
		"own job, other case": "Bob@ACME.example",
		"other's job":         "carol@acme.example",
		"unknown principal":   "",
	}
	d := func(see, query, cancel bool) decisions { return decisions{see, query, cancel} }
	want := map[string]map[string]decisions{
		"admin": {
			"own job": d(true, true, true), "own job, other case": d(true, true, true),
			"other's job": d(true, true, true), "unknown principal": d(true, true, true),
		},
		"viewer": {
			"own job": d(true, true, false), "own job, other case": d(true, true, false),
			"other's job": d(true, false, false), "unknown principal": d(true, false, false),
		},
		"viewer with queries": {
			"own job": d(true, true, false), "own job, other case": d(true, true, false),
			"other's job": d(true, true, false), "unknown principal": d(true, true, false),
		},
		"own": {
			"own job": d(true, true, false), "own job, other case": d(true, true, false),
			"other's job": d(false, false, false), "unknown principal": d(false, false, false),
		},
		"own granted queries": {
			"own job": d(true, true, false), "own job, other case": d(true, true, false),
			"other's job": d(false, false, false), "unknown principal": d(false, false, false),
		},
		"none": {
			"own job": d(false, false, false), "own job, other case": d(false, false, false),
			"other's job": d(false, false, false), "unknown principal": d(false, false, false),
		},
		"anonymous (mode none)": {
			"own job": d(true, true, true), "own job, other case": d(true, true, true),
			"other's job": d(true, true, true), "unknown principal": d(true, true, true),
		},
		"zero (no principal)": {
			"own job": d(false, false, false), "own job, other case": d(false, false, false),
			"other's job": d(false, false, false), "unknown principal": d(false, false, false),
		},
	}
	got := make(map[string]map[string]decisions)
	for pn, p := range principals {
		got[pn] = make(map[string]decisions)
		for jn, j := range jobs {
			got[pn][jn] = decide(p, j)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decisions mismatch (-want +got):\n%s", diff)
	}
}

func TestPrincipalContext(t *testing.T) {
	type result struct {
		P  Principal
		OK bool
	}
	p := Principal{Email: "bob@acme.example", Role: RoleViewer, Method: ModeIAP}
	tests := []struct {
		name string
		ctx  context.Context
		want result
	}{
		{name: "with a principal", ctx: WithPrincipal(context.Background(), p), want: result{p, true}},
		{name: "without one sees nothing", ctx: context.Background(), want: result{Principal{}, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := PrincipalFrom(tt.ctx)
			if diff := cmp.Diff(tt.want, result{got, ok}); diff != "" {
				t.Errorf("PrincipalFrom() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRoleText(t *testing.T) {
	got := map[Role]string{}
	for r := RoleNone; r <= RoleAdmin+1; r++ {
		b, err := r.MarshalText()
		got[r] = r.String() + "|" + string(b) + "|" + errText(err)
	}
	want := map[Role]string{
		RoleNone:      "none|none|",
		RoleOwn:       "own|own|",
		RoleViewer:    "viewer|viewer|",
		RoleAdmin:     "admin|admin|",
		RoleAdmin + 1: "Role(4)||encoding role: unknown role 4",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("role text mismatch (-want +got):\n%s", diff)
	}
}
