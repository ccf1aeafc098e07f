package simulation_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/internal/simulation"
	"github.com/bqobserver/bqobserver/internal/testutil/reftest"
)

// The structural fidelity test compares the JSON paths of simulated
// entries with those of real entries captured from Cloud Logging (in
// ../shared/reference/auditlogs beside the repository) and with the paths
// the field reference (../shared/reference/AUDITLOG-FORMATS.md) names.
//
// Paths are written as dotted member names from the root of the LogEntry,
// lower-cased (one collector lower-cases keys; JSON names are
// case-sensitive but no two members differ by case alone), with
// "at_sign_type" read as "@type", array elements transparent (a.b[3].c is
// a.b.c), a job's labels map keys as "*" and collector-added top-level
// "p_*" members dropped. Every node is a path, objects included, so an
// empty queryStats {} counts.
//
// Entries are grouped by kind: format, event (v1 insert, query,
// jobcompleted, cancel; v2 jobInsertion, jobChange:<after>, cancel), job
// state, job type, statement type and outcome (ok or failed). Two checks:
//
//   - Required: a simulated entry carries every path that every real entry
//     of its kind carries. A real entry that is only a protoPayload
//     constrains only paths under protoPayload.
//   - Known: a simulated path is one a real job entry of the same format
//     has, or one the field reference names. Real paths are compared with
//     the job's location folded: the Job message is the same under
//     v1 jobCompletedEvent.job, jobInsertRequest.resource, ... (the
//     reference's J1) and v2 jobInsertion.job and jobChange.job (J2).
//
// How the reference's paths are matched: every `backticked` token is read
// as a dotted path (a leading "…" or "J1."/"J2." dropped, "[0]" and "[]"
// dropped, "x {a, b}" read as x, x.a and x.b, "a.b/c" as a.b and a.c,
// anything after a space, "=" or ":" ignored). A simulated path is known
// to the reference when (a) it ends with a token of two or more members,
// or (b) its last member is a name some token contains and its parent is
// known (to a real entry, by (a) or (b), or as the first member of a
// dotted token). Rule (b) reads the reference's lists of sibling fields
// ("`load.destinationTable`", "`sourceUris[]`"), which name a field
// without repeating its parent.
func TestStructuralFidelity(t *testing.T) {
	dir := reftest.Dir(t)
	real := loadReal(t, filepath.Join(dir, "auditlogs"))
	ref := loadReference(t, filepath.Join(dir, "AUDITLOG-FORMATS.md"))
	k := newKnowledge(real, ref)
	sim := simulatedByKind(t)
	checked := 0
	for _, kind := range sortedKeys(sim) {
		entries := sim[kind]
		req, samples := k.required(kind)
		if samples > 0 {
			checked++
		}
		for _, e := range entries {
			for _, p := range req {
				if !e.paths[p] {
					t.Errorf("%s: a simulated entry lacks %s, which all %d real entries of its kind carry\n%s", kind, p, samples, clip(e.data))
					break
				}
			}
		}
		for _, p := range sortedKeys(unionPaths(entries)) {
			if !k.known(kind, p) {
				t.Errorf("%s: simulated path %s is in no real entry and not in the field reference", kind, p)
			}
		}
		t.Logf("%-70s %5d simulated, %2d real, %3d required paths", kind, len(entries), samples, len(req))
	}
	if checked < 6 {
		t.Errorf("only %d simulated kinds have real samples to check against, want at least 6", checked)
	}
}

// TestFidelityCheckerCatches makes sure the path rules can fail: an
// invented member and a dropped required member are both reported.
func TestFidelityCheckerCatches(t *testing.T) {
	dir := reftest.Dir(t)
	k := newKnowledge(loadReal(t, filepath.Join(dir, "auditlogs")), loadReference(t, filepath.Join(dir, "AUDITLOG-FORMATS.md")))
	const kind = "v2 jobchange:DONE DONE QUERY SELECT ok"
	for _, tc := range []struct {
		path  string
		known bool
	}{
		{"protopayload.metadata.jobchange.job.jobstats.totalslotms", true},
		{"protopayload.metadata.jobinsertion.job.jobconfig.loadconfig.createdisposition", true},
		{"protopayload.metadata.jobchange.job.jobstats.parentjobname", true},
		{"protopayload.servicedata.jobcompletedevent.job.jobconfiguration.load.sourceuris", true},
		{"protopayload.metadata.jobchange.job.jobstats.inventedfield", false},
		{"protopayload.metadata.jobchange.job.jobconfig.queryconfig.maxresults", false},
		{"resource.labels.zone", false},
	} {
		if got := k.known(kind, tc.path); got != tc.known {
			t.Errorf("known(%s) = %v, want %v", tc.path, got, tc.known)
		}
	}
	req, _ := k.required(kind)
	for _, want := range []string{"protopayload.metadata.jobchange.job.jobstats.totalslotms", "operation.last", "protopayload.metadata.jobchange.job.jobstats.querystats.referencedtables"} {
		if !slices.Contains(req, want) {
			t.Errorf("required paths of %s lack %s: %v", kind, want, req)
		}
	}
}

// sample is one entry's path set.
type sample struct {
	kind    string
	paths   map[string]bool
	partial bool // only a protoPayload: its envelope is unknown
	data    []byte
}

func loadReal(t *testing.T, dir string) []sample {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no reference entries in %s: %v", dir, err)
	}
	var out []sample
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		docs, ok := v.([]any)
		if !ok {
			docs = []any{v}
		}
		for _, d := range docs {
			if s, ok := sampleOf(d, b); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// sampleOf reads one entry; ok is false for an entry that is not a job
// event.
func sampleOf(doc any, data []byte) (sample, bool) {
	obj, _ := normalise(doc).(map[string]any)
	s := sample{data: data}
	if _, ok := obj["protopayload"]; !ok {
		obj, s.partial = map[string]any{"protopayload": obj}, true
	}
	s.kind = kindOf(obj)
	if s.kind == "" {
		return sample{}, false
	}
	s.paths = map[string]bool{}
	collect(obj, "", s.paths)
	return s, true
}

// normalise lower-cases member names, reads at_sign_type as @type and
// drops collector-added p_* members.
func normalise(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			k = strings.ToLower(k)
			if k == "at_sign_type" {
				k = "@type"
			}
			if strings.HasPrefix(k, "p_") {
				continue
			}
			out[k] = normalise(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = normalise(val)
		}
		return out
	}
	return v
}

// collect adds the paths of every node under v.
func collect(v any, prefix string, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		labels := strings.HasSuffix(prefix, "jobconfiguration.labels") || strings.HasSuffix(prefix, "jobconfig.labels")
		for k, val := range x {
			if labels {
				k = "*"
			}
			p := join(prefix, k)
			out[p] = true
			collect(val, p, out)
		}
	case []any:
		for _, val := range x {
			collect(val, prefix, out)
		}
	}
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func get(v any, path ...string) any {
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	return v
}

func str(v any, path ...string) string {
	s, _ := get(v, path...).(string)
	return s
}

// kindOf names an entry's kind, or "" for an entry that is no job event.
func kindOf(e map[string]any) string {
	pp := get(e, "protopayload")
	method := str(pp, "methodname")
	if sd := get(pp, "servicedata"); sd != nil {
		return kindV1(sd, method)
	}
	md := get(pp, "metadata")
	switch {
	case strings.HasSuffix(method, "CancelJob"):
		return "v2 cancel"
	case get(md, "jobinsertion") != nil:
		return "v2 jobinsertion " + jobKindV2(get(md, "jobinsertion", "job"))
	case get(md, "jobchange") != nil:
		return "v2 jobchange:" + str(md, "jobchange", "after") + " " + jobKindV2(get(md, "jobchange", "job"))
	}
	return ""
}

func kindV1(sd any, method string) string {
	switch {
	case method == "jobservice.cancel":
		return "v1 cancel"
	case get(sd, "jobcompletedevent") != nil:
		return "v1 jobcompleted " + jobKindV1(get(sd, "jobcompletedevent", "job"))
	case get(sd, "jobqueryresponse") != nil:
		return "v1 query " + jobKindV1(get(sd, "jobqueryresponse", "job"))
	case get(sd, "jobinsertrequest") != nil:
		event := "insert"
		if get(sd, "jobinsertrequest", "resource", "jobconfiguration", "dryrun") == true {
			event = "insert-dryrun"
		}
		resp := get(sd, "jobinsertresponse", "resource")
		return "v1 " + event + " " + jobKindV1(resp, get(sd, "jobinsertrequest", "resource", "jobconfiguration"))
	}
	return ""
}

// jobKindV1 describes a v1 job: its state and outcome from job, its type
// and statement from cfg (or job's own configuration when cfg is nil).
func jobKindV1(job any, cfg ...any) string {
	c := get(job, "jobconfiguration")
	if len(cfg) > 0 {
		c = cfg[0]
	}
	typ := ""
	for _, t := range []string{"query", "load", "extract", "tablecopy"} {
		if get(c, t) != nil {
			typ = strings.ToUpper(t)
		}
	}
	outcome := "ok"
	if m, _ := get(job, "jobstatus", "error").(map[string]any); len(m) > 0 {
		outcome = "failed"
	}
	return str(job, "jobstatus", "state") + " " + typ + " " + str(c, "query", "statementtype") + " " + outcome
}

func jobKindV2(job any) string {
	outcome := "ok"
	if get(job, "jobstatus", "errorresult") != nil {
		outcome = "failed"
	}
	return str(job, "jobstatus", "jobstate") + " " + str(job, "jobconfig", "type") + " " +
		str(job, "jobconfig", "queryconfig", "statementtype") + " " + outcome
}

// simulatedByKind generates some hours of traffic and groups its entries.
func simulatedByKind(t *testing.T) map[string][]sample {
	t.Helper()
	org, err := simulation.New(simulation.Config{Seed: 7, Rate: 0.3, Delivery: &simulation.Delivery{}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]sample{}
	for e := range org.Generate(8 * time.Hour) {
		var v any
		if err := json.Unmarshal(e.Data, &v); err != nil {
			t.Fatalf("simulated entry is not JSON: %v", err)
		}
		s, ok := sampleOf(v, e.Data)
		if !ok {
			t.Fatalf("simulated entry of no job kind:\n%s", clip(e.Data))
		}
		out[s.kind] = append(out[s.kind], s)
	}
	return out
}

// knowledge is what the real entries and the field reference know.
type knowledge struct {
	real      []sample
	realPaths map[string]map[string]bool // per format, folded real paths
	dotted    []string                   // reference tokens of two or more members
	names     map[string]bool            // every member name in the reference
	heads     map[string]bool            // first members of dotted tokens
	memoized  map[string]bool
}

func newKnowledge(real []sample, tokens []string) *knowledge {
	k := &knowledge{real: real, realPaths: map[string]map[string]bool{}, names: map[string]bool{}, heads: map[string]bool{}, memoized: map[string]bool{}}
	for _, s := range real {
		format := s.kind[:2]
		if k.realPaths[format] == nil {
			k.realPaths[format] = map[string]bool{}
		}
		for p := range s.paths {
			k.realPaths[format][fold(p)] = true
		}
	}
	for _, tok := range tokens {
		parts := strings.Split(tok, ".")
		for _, p := range parts {
			k.names[p] = true
		}
		if len(parts) > 1 {
			k.dotted = append(k.dotted, tok)
			k.heads[parts[0]] = true
		}
	}
	return k
}

// jobPrefixes are where the Job message sits in each format.
var jobPrefixes = []struct{ prefix, name string }{
	{"protopayload.servicedata.jobcompletedevent.job", "J1"},
	{"protopayload.servicedata.jobinsertrequest.resource", "J1"},
	{"protopayload.servicedata.jobinsertresponse.resource", "J1"},
	{"protopayload.servicedata.jobqueryresponse.job", "J1"},
	{"protopayload.servicedata.jobgetqueryresultsresponse.job", "J1"},
	{"protopayload.servicedata.jobquerydoneresponse.job", "J1"},
	{"protopayload.metadata.jobinsertion.job", "J2"},
	{"protopayload.metadata.jobchange.job", "J2"},
}

// fold writes the Job message's location as J1 or J2.
func fold(p string) string {
	for _, j := range jobPrefixes {
		if p == j.prefix || strings.HasPrefix(p, j.prefix+".") {
			return j.name + p[len(j.prefix):]
		}
	}
	return p
}

// required lists the paths every real entry of kind carries, and how many
// real entries there are.
func (k *knowledge) required(kind string) ([]string, int) {
	var req map[string]bool
	n := 0
	for _, s := range k.real {
		if s.kind != kind {
			continue
		}
		n++
		if req == nil {
			req = map[string]bool{}
			for p := range s.paths {
				req[p] = true
			}
			continue
		}
		for p := range req {
			if !s.paths[p] && (!s.partial || strings.HasPrefix(p, "protopayload")) {
				delete(req, p)
			}
		}
	}
	return sortedKeys(req), n
}

func (k *knowledge) known(kind, p string) bool {
	return k.realPaths[kind[:2]][fold(p)] || k.refKnown(p)
}

// refKnown applies rules (a) and (b) of the field reference.
func (k *knowledge) refKnown(p string) bool {
	if v, ok := k.memoized[p]; ok {
		return v
	}
	v := false
	for _, tok := range k.dotted {
		if p == tok || strings.HasSuffix(p, "."+tok) {
			v = true
			break
		}
	}
	if !v {
		parent, leaf := splitLast(p)
		v = (k.names[leaf] || leaf == "*") && k.parentKnown(parent)
	}
	k.memoized[p] = v
	return v
}

func (k *knowledge) parentKnown(p string) bool {
	if p == "" {
		return true
	}
	_, leaf := splitLast(p)
	for _, paths := range k.realPaths {
		if paths[fold(p)] {
			return true
		}
	}
	return k.heads[leaf] || k.refKnown(p)
}

func splitLast(p string) (string, string) {
	i := strings.LastIndexByte(p, '.')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

var (
	backticked = regexp.MustCompile("`([^`]+)`")
	braces     = regexp.MustCompile(`^(.*?)\s*\{([^}]*)\}`)
	identifier = regexp.MustCompile(`^[a-z0-9_@]+$`)
)

// loadReference reads the field reference's backticked tokens as paths.
func loadReference(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("reading the field reference: %v", err)
	}
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(string(b), -1) {
		out = append(out, tokenPaths(m[1])...)
	}
	return out
}

// tokenPaths reads one backticked token as the paths it names.
func tokenPaths(tok string) []string {
	tok = strings.TrimLeft(tok, "…. ")
	tok = strings.TrimPrefix(strings.TrimPrefix(tok, "J1."), "J2.")
	var children []string
	if m := braces.FindStringSubmatch(tok); m != nil {
		tok = m[1]
		for _, c := range strings.Split(m[2], ",") {
			c = strings.TrimSpace(c)
			c, _, _ = strings.Cut(c, ":")
			children = append(children, c)
		}
	}
	base := strings.FieldsFunc(tok, func(r rune) bool { return r == ' ' || r == '=' || r == ':' })
	if len(base) == 0 {
		return nil
	}
	var out []string
	for _, alt := range alternatives(base[0]) {
		if p, ok := cleanPath(alt); ok {
			out = append(out, p)
			for _, c := range children {
				if cp, ok := cleanPath(alt + "." + c); ok {
					out = append(out, cp)
				}
			}
		}
	}
	return out
}

// alternatives reads a.b/c as a.b and a.c.
func alternatives(tok string) []string {
	head, last := splitLast(tok)
	if strings.Count(tok, "/") != 1 || !strings.Contains(last, "/") {
		return []string{tok}
	}
	a, b, _ := strings.Cut(last, "/")
	return []string{join(head, a), join(head, b)}
}

// cleanPath lower-cases a token and drops array marks and quotes; ok is
// false for a token that is not a path (a value, a URL, a file name).
func cleanPath(tok string) (string, bool) {
	tok = strings.ToLower(strings.NewReplacer("[0]", "", "[]", "", `"`, "").Replace(tok))
	if tok == "" {
		return "", false
	}
	for _, part := range strings.Split(tok, ".") {
		if !identifier.MatchString(part) {
			return "", false
		}
	}
	return tok, true
}

func unionPaths(ss []sample) map[string]bool {
	out := map[string]bool{}
	for _, s := range ss {
		for p := range s.paths {
			out[p] = true
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
