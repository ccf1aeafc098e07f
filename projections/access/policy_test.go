package access

import (
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadPolicy(t *testing.T) {
	// Each caller as email and hosted domain: the domain that manages the
	// account, if one does.
	callers := [][2]string{
		{"alice@acme.example", "acme.example"}, {"ALICE@Acme.Example", "Acme.Example"}, {"oncall-bot@ops.iam.gserviceaccount.com", ""},
		{"bob@acme.example", "acme.example"}, {"bob@acme.example", ""}, {"bob@eng.acme.example", "eng.acme.example"},
		{"carol@dba.acme.example", "dba.acme.example"}, {"contractor@partner.example", "partner.example"},
		{"dan@eu.partner.example", ""}, {"eve@partner.example", "partner.example"}, {"mallory@acme.example.evil", "acme.example.evil"}, {"", ""},
	}
	want := map[[2]string]Grant{
		{"alice@acme.example", "acme.example"}:             {Role: RoleAdmin},
		{"ALICE@Acme.Example", "Acme.Example"}:             {Role: RoleAdmin},
		{"oncall-bot@ops.iam.gserviceaccount.com", ""}:     {Role: RoleAdmin},
		{"bob@acme.example", "acme.example"}:               {Role: RoleViewer},
		{"bob@acme.example", ""}:                           {}, // an account acme.example does not manage
		{"bob@eng.acme.example", "eng.acme.example"}:       {},
		{"carol@dba.acme.example", "dba.acme.example"}:     {Role: RoleViewer, ShowQueries: true},
		{"contractor@partner.example", "partner.example"}:  {Role: RoleOwn},
		{"dan@eu.partner.example", ""}:                     {Role: RoleOwn},
		{"eve@partner.example", "partner.example"}:         {},
		{"mallory@acme.example.evil", "acme.example.evil"}: {},
		{"", ""}: {},
	}
	for _, file := range []string{"testdata/policy.yaml", "testdata/policy.json"} {
		t.Run(file, func(t *testing.T) {
			p, err := LoadPolicy(file)
			if err != nil {
				t.Fatal(err)
			}
			got := make(map[[2]string]Grant)
			for _, c := range callers {
				got[c] = p.Resolve(c[0], c[1])
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Resolve() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadPolicyInvalid(t *testing.T) {
	_, err := LoadPolicy("testdata/invalid.yaml")
	want := []string{
		`testdata/invalid.yaml:2: unknown role "owner" (want admin, viewer or own)`,
		`testdata/invalid.yaml:6: member "group:analysts@acme.example": group: members are not supported, because resolving a group needs a directory lookup (the Cloud Identity Groups API) that bqobserver does not make; list the people as user: members, or use domain: or a user:*@… pattern`,
		`testdata/invalid.yaml:8: show_queries must be true or false`,
		`testdata/invalid.yaml:10: show_queries applies to viewer entries only (admin always reads query text; own sees only its own jobs)`,
		`testdata/invalid.yaml:11: members is empty`,
	}
	if diff := cmp.Diff(want, joined(err)); diff != "" {
		t.Errorf("LoadPolicy() errors mismatch (-want +got):\n%s", diff)
	}
	if _, err := LoadPolicy("testdata/missing.yaml"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadPolicy(missing) error = %v, want os.ErrNotExist", err)
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []PolicyError
	}{
		{name: "empty file", yaml: "", want: []PolicyError{{Line: 1, Reason: "empty policy: it grants nothing (want a roles: list)"}}},
		{name: "comments only", yaml: "# nothing\n", want: []PolicyError{{Line: 1, Reason: "empty policy: it grants nothing (want a roles: list)"}}},
		{name: "syntax error", yaml: "roles:\n\t- role: admin\n", want: []PolicyError{{Reason: "yaml: line 2: found character that cannot start any token"}}},
		{name: "two documents", yaml: "roles: []\n---\nroles: []\n", want: []PolicyError{{Reason: "line 2: a policy file holds one YAML document"}}},
		{name: "not a mapping", yaml: "- role: admin\n", want: []PolicyError{{Line: 1, Reason: "the policy must be a mapping with keys roles:"}}},
		{name: "no roles", yaml: "rules: []\n", want: []PolicyError{
			{Line: 1, Reason: `unknown key "rules" in the policy (want roles:)`},
			{Line: 1, Reason: "missing roles: the policy grants nothing"},
		}},
		{name: "roles not a list", yaml: "roles:\n  admin: [user:a@b.example]\n", want: []PolicyError{{Line: 2, Reason: "roles must be a list of entries with role: and members:"}}},
		{name: "roles empty", yaml: "roles: []\n", want: []PolicyError{{Line: 1, Reason: "roles is empty: the policy grants nothing"}}},
		{name: "entry not a mapping", yaml: "roles:\n  - admin\n", want: []PolicyError{{Line: 2, Reason: "a roles entry must be a mapping with keys role:, members: or show_queries:"}}},
		{name: "unknown key and duplicate key", yaml: "roles:\n  - role: admin\n    role: viewer\n    member: [user:a@b.example]\n", want: []PolicyError{
			{Line: 2, Reason: "entry has no members:"},
			{Line: 3, Reason: `key "role" appears twice in a roles entry`},
			{Line: 4, Reason: `unknown key "member" in a roles entry (want role:, members: or show_queries:)`},
		}},
		{name: "no role", yaml: "roles:\n  - members: [user:a@b.example]\n", want: []PolicyError{{Line: 2, Reason: "entry has no role: (want admin, viewer or own)"}}},
		{name: "role in another case", yaml: "roles:\n  - role: Admin\n    members: [user:a@b.example]\n", want: []PolicyError{{Line: 2, Reason: `unknown role "Admin" (want admin, viewer or own)`}}},
		{name: "role none", yaml: "roles:\n  - role: none\n    members: [user:a@b.example]\n", want: []PolicyError{{Line: 2, Reason: `unknown role "none" (want admin, viewer or own)`}}},
		{name: "members not a list", yaml: "roles:\n  - role: own\n    members: user:a@b.example\n", want: []PolicyError{{Line: 3, Reason: `members must be a list of strings such as "user:alice@acme.example"`}}},
		{name: "member not a string", yaml: "roles:\n  - role: own\n    members:\n      - user: a@b.example\n      - 42\n", want: []PolicyError{
			{Line: 4, Reason: `a member must be a string such as "user:alice@acme.example"`},
			{Line: 5, Reason: `a member must be a string such as "user:alice@acme.example"`},
		}},
		{name: "bad members", yaml: `roles:
  - role: viewer
    members:
      - alice@acme.example
      - allAuthenticatedUsers
      - allUsers
      - user:alice
      - user:@acme.example
      - user:a@b@c
      - user:*@*
      - serviceAccount:*@*.*
      - domain:*.acme.example
      - domain:alice@acme.example
      - domain:.acme.example
      - "user: alice@acme.example"
      - principal://iam.googleapis.com/x
      - deleted:user:bob@acme.example
      - serviceAccount:*@*.iam.gserviceaccount.com
      - serviceAccount:*@acme-*.iam.gserviceaccount.com
      - user:*@*.com
      - serviceAccount:*@developer.gserviceaccount.com
      - serviceAccount:*@gcp-sa-pubsub.iam.gserviceaccount.com
      - serviceAccount:*@appspot.gserviceaccount.com
`, want: []PolicyError{
			{Line: 4, Reason: `member "alice@acme.example" has no kind (want user:EMAIL, serviceAccount:EMAIL, domain:DOMAIN or a pattern such as user:*@eng.acme.example)`},
			{Line: 5, Reason: `member "allAuthenticatedUsers" is not supported: any Google account can obtain an ID token for any audience; name a domain: or a user:*@… pattern instead`},
			{Line: 6, Reason: `member "allUsers" is not supported: any Google account can obtain an ID token for any audience; name a domain: or a user:*@… pattern instead`},
			{Line: 7, Reason: `member "user:alice" is not an email address (want one '@' with text on both sides)`},
			{Line: 8, Reason: `member "user:@acme.example" is not an email address (want one '@' with text on both sides)`},
			{Line: 9, Reason: `member "user:a@b@c" is not an email address (want one '@' with text on both sides)`},
			{Line: 10, Reason: `pattern "user:*@*" matches every domain; name the domain, as in user:*@eng.acme.example`},
			{Line: 11, Reason: `pattern "serviceAccount:*@*.*" matches every domain; name the domain, as in user:*@eng.acme.example`},
			{Line: 12, Reason: `member "domain:*.acme.example" is not a domain name (write domain:acme.example; for a pattern use user:*@…)`},
			{Line: 13, Reason: `member "domain:alice@acme.example" is not a domain name (write domain:acme.example; for a pattern use user:*@…)`},
			{Line: 14, Reason: `member "domain:.acme.example" is not a domain name (write domain:acme.example; for a pattern use user:*@…)`},
			{Line: 15, Reason: `member "user: alice@acme.example" has an empty value or spaces`},
			{Line: 16, Reason: `member "principal://iam.googleapis.com/x" has an unknown kind "principal:" (want user:, serviceAccount: or domain:)`},
			{Line: 17, Reason: `member "deleted:user:bob@acme.example" has an unknown kind "deleted:" (want user:, serviceAccount: or domain:)`},
			{Line: 18, Reason: `pattern "serviceAccount:*@*.iam.gserviceaccount.com" matches service accounts of projects anyone can create; name one project's, as in serviceAccount:*@PROJECT.iam.gserviceaccount.com, or each account`},
			{Line: 19, Reason: `pattern "serviceAccount:*@acme-*.iam.gserviceaccount.com" has a '*' in its domain other than a whole first label; name the domain, as in user:*@eng.acme.example or user:*@*.acme.example`},
			{Line: 20, Reason: `pattern "user:*@*.com" matches every domain under a top-level domain; name the organization's domain, as in user:*@*.acme.example`},
			{Line: 21, Reason: `pattern "serviceAccount:*@developer.gserviceaccount.com" matches service accounts of projects anyone can create; name one project's, as in serviceAccount:*@PROJECT.iam.gserviceaccount.com, or each account`},
			{Line: 22, Reason: `pattern "serviceAccount:*@gcp-sa-pubsub.iam.gserviceaccount.com" matches service accounts of projects anyone can create; name one project's, as in serviceAccount:*@PROJECT.iam.gserviceaccount.com, or each account`},
			{Line: 23, Reason: `pattern "serviceAccount:*@appspot.gserviceaccount.com" matches service accounts of projects anyone can create; name one project's, as in serviceAccount:*@PROJECT.iam.gserviceaccount.com, or each account`},
		}},
		{name: "show_queries on own", yaml: "roles:\n  - role: own\n    show_queries: false\n    members: [user:a@b.example]\n", want: []PolicyError{
			{Line: 3, Reason: "show_queries applies to viewer entries only (admin always reads query text; own sees only its own jobs)"},
		}},
		{name: "JSON with errors", yaml: "{\"roles\": [\n  {\"role\": \"admin\",\n   \"members\": [\"group:ops@acme.example\"]}\n]}\n", want: []PolicyError{
			{Line: 3, Reason: `member "group:ops@acme.example": group: members are not supported, because resolving a group needs a directory lookup (the Cloud Identity Groups API) that bqobserver does not make; list the people as user: members, or use domain: or a user:*@… pattern`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy("p.yaml", []byte(tt.yaml))
			for i := range tt.want {
				tt.want[i].File = "p.yaml"
			}
			if diff := cmp.Diff(tt.want, policyErrors(t, err)); diff != "" {
				t.Errorf("ParsePolicy() errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// policyErrors returns the *PolicyErrors err joins.
func policyErrors(t *testing.T, err error) []PolicyError {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else if err != nil {
		errs = []error{err}
	}
	var got []PolicyError
	for _, e := range errs {
		var pe *PolicyError
		if !errors.As(e, &pe) {
			t.Fatalf("error %v is not a *PolicyError", e)
		}
		got = append(got, *pe)
	}
	return got
}

func TestResolve(t *testing.T) {
	p := mustPolicy(t, `
roles:
  - role: own
    members: ["domain:acme.example"]
  - role: viewer
    members: ["domain:dba.acme.example", "user:*-ro@acme.example"]
  - role: viewer
    show_queries: true
    members: ["user:*@dba.acme.example"]
  - role: admin
    members: ["user:boss@dba.acme.example", "serviceAccount:ops@p.iam.gserviceaccount.com"]
  - role: own
    members: ["user:boss@dba.acme.example"]
`)
	tests := []struct {
		email, hd string // hd: the domain that manages the account, if one does
		want      Grant
	}{
		{"boss@dba.acme.example", "acme.example", Grant{Role: RoleAdmin}},
		{"BOSS@DBA.ACME.EXAMPLE", "ACME.EXAMPLE", Grant{Role: RoleAdmin}},
		{"ops@p.iam.gserviceaccount.com", "", Grant{Role: RoleAdmin}},
		{"carol@dba.acme.example", "dba.acme.example", Grant{Role: RoleViewer, ShowQueries: true}},
		{"reports-ro@acme.example", "", Grant{Role: RoleViewer}}, // a pattern matches the email alone
		{"bob@acme.example", "acme.example", Grant{Role: RoleOwn}},
		{"bob@acme.example", "", Grant{}},                             // an address at the domain that it does not manage
		{"bob@partner.example", "acme.example", Grant{Role: RoleOwn}}, // an account of the domain with another address
		{"dave@dba.acme.example", "", Grant{Role: RoleViewer, ShowQueries: true}},
		{"bob@eng.acme.example", "eng.acme.example", Grant{}},
		{"bob@acme.example.evil", "acme.example.evil", Grant{}},
		{"carol@dba.acme.example@evil", "", Grant{}},
		{"x@sub.dba.acme.example", "sub.dba.acme.example", Grant{}},
		{"", "acme.example", Grant{}},
	}
	for _, tt := range tests {
		t.Run(tt.email+" "+tt.hd, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, p.Resolve(tt.email, tt.hd)); diff != "" {
				t.Errorf("Resolve(%q, %q) mismatch (-want +got):\n%s", tt.email, tt.hd, diff)
			}
		})
	}
	var none *Policy
	if diff := cmp.Diff(Grant{}, none.Resolve("alice@acme.example", "acme.example")); diff != "" {
		t.Errorf("nil Policy Resolve() mismatch (-want +got):\n%s", diff)
	}
}

// mustPolicy parses a policy or fails the test.
func mustPolicy(t testing.TB, yaml string) *Policy {
	t.Helper()
	p, err := ParsePolicy("policy.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testPolicy grants every role to someone.
const testPolicy = `
roles:
  - role: admin
    members: ["user:alice@acme.example"]
  - role: viewer
    members: ["domain:acme.example"]
  - role: viewer
    show_queries: true
    members: ["user:*@dba.acme.example"]
  - role: own
    members: ["user:contractor@partner.example", "serviceAccount:etl@proj.iam.gserviceaccount.com"]
`

// joined returns the messages of the errors joined in err.
func joined(err error) []string {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []string{err.Error()}
	}
	var msgs []string
	for _, e := range j.Unwrap() {
		msgs = append(msgs, e.Error())
	}
	return msgs
}

// TestPatternsOfOneOrganization: the patterns refused above for admitting
// strangers leave those of one organization's domains and one project's
// service accounts.
func TestPatternsOfOneOrganization(t *testing.T) {
	for _, tc := range []struct{ member, in, out string }{
		{"user:*@dba.acme.example", "ann@dba.acme.example", "ann@acme.example"},
		{"user:*@*.partner.example", "bo@eu.partner.example", "bo@partner.example.evil.example"},
		{"serviceAccount:*@observer.iam.gserviceaccount.com", "etl@observer.iam.gserviceaccount.com", "etl@observer2.iam.gserviceaccount.com"},
		{"serviceAccount:etl-*@observer.iam.gserviceaccount.com", "etl-nightly@observer.iam.gserviceaccount.com", "bi@observer.iam.gserviceaccount.com"},
	} {
		m, err := parseMember(tc.member)
		if err != nil {
			t.Errorf("%s: %v", tc.member, err)
			continue
		}
		if !m.matches(tc.in, "") || m.matches(tc.out, "") {
			t.Errorf("%s matches %s: %v, %s: %v; want true, false", tc.member, tc.in, m.matches(tc.in, ""), tc.out, m.matches(tc.out, ""))
		}
	}
}
