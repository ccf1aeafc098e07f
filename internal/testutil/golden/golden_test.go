package golden

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/internal/testutil/tbtest"
)

// file writes content to a golden file of the test's own.
func file(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "testdata", "x.golden")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// failure is what a check reported, reduced to what a test can rely on:
// go-cmp varies the spacing of its diffs on purpose.
type failure struct {
	Errors int
	Fatal  bool
	// Said holds whether each of the wanted fragments was found in the
	// messages.
	Said map[string]bool
}

func reduce(o tbtest.Outcome, fragments []string) failure {
	all := strings.Join(append(o.Errors, o.Fatal), "\n")
	said := map[string]bool{}
	for _, f := range fragments {
		said[f] = strings.Contains(all, f)
	}
	return failure{Errors: len(o.Errors), Fatal: o.Fatal != "", Said: said}
}

// expect builds the failure a case wants: every fragment said.
func expect(errors int, fatal bool, fragments ...string) failure {
	said := map[string]bool{}
	for _, f := range fragments {
		said[f] = true
	}
	return failure{Errors: errors, Fatal: fatal, Said: said}
}

// goldenCase is a golden file and a check against it.
type goldenCase struct {
	name   string
	golden string
	check  func(tb testing.TB, path string)
	want   failure
}

func runCases(t *testing.T, tests []goldenCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := file(t, tt.golden)
			o := tbtest.Run(t, func(tb testing.TB) { tt.check(tb, path) })
			if diff := cmp.Diff(reduce(o, keys(tt.want.Said)), tt.want); diff != "" {
				t.Errorf("the check reported %+v\n(-got +want):\n%s", o, diff)
			}
		})
	}
}

func jsonOf(got any) func(testing.TB, string) {
	return func(tb testing.TB, path string) { JSON(tb, path, got) }
}

func linesOf(got ...string) func(testing.TB, string) {
	return func(tb testing.TB, path string) { JSONLines(tb, path, got) }
}

func textOf(got string) func(testing.TB, string) {
	return func(tb testing.TB, path string) { Text(tb, path, got) }
}

func TestJSON(t *testing.T) {
	type row struct {
		Name   string `json:"name"`
		SlotMs int64  `json:"slot_ms"`
	}
	runCases(t, []goldenCase{
		{"same document, other spacing, key order and number forms", `{ "b": [1, 2e0, 3.50], "a": {"x": null} }`,
			jsonOf([]byte(`{"a":{"x":null},"b":[1.0,2,3.5]}`)), expect(0, false)},
		{"a value marshalled", `{"name": "job", "slot_ms": 12}`, jsonOf(row{"job", 12}), expect(0, false)},
		{"raw message", `[true]`, jsonOf(json.RawMessage(`[ true ]`)), expect(0, false)},
		{"a value differs", `{"state": "RUNNING", "n": 1}`, jsonOf([]byte(`{"state": "DONE", "n": 1}`)),
			expect(1, false, "x.golden: got differs from the golden file (-got +want)", `"DONE"`, `"RUNNING"`, "go test -update")},
		{"a key is missing", `{"a": 1, "b": 2}`, jsonOf([]byte(`{"a": 1}`)), expect(1, false, `"b"`)},
		{"integers beyond a float64 differ", `{"n": 9007199254740992}`, jsonOf([]byte(`{"n": 9007199254740993}`)),
			expect(1, false, "9007199254740993", "9007199254740992")},
		{"got is not JSON", `{}`, jsonOf([]byte(`{"a":`)), expect(0, true, "got is not one JSON document")},
		{"got is two documents", `{}`, jsonOf([]byte(`{} {}`)), expect(0, true, "got is not one JSON document")},
		{"golden file is not JSON", `{`, jsonOf([]byte(`{}`)), expect(0, true, "the golden file is not one JSON document")},
	})
}

func TestJSONLines(t *testing.T) {
	many := strings.Split(strings.Repeat(`{"n":2}`+"\n", 12), "\n")[:12]
	runCases(t, []goldenCase{
		{"same values", "{\"a\": 1}\n[1, 2]\n", linesOf(`{"a":1.0}`, `[1,2]`), expect(0, false)},
		{"one line differs", "{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3}\n", linesOf(`{"a":1}`, `{"a":5}`, `{"a":3}`),
			expect(1, false, "x.golden: line 2 differs (-got +want)")},
		{"fewer lines", "1\n2\n3\n", linesOf("1", "2"), expect(1, false, "x.golden: got 2 lines, want 3")},
		{"more lines", "1\n", linesOf("1", "2"), expect(1, false, "x.golden: got 2 lines, want 1")},
		{"no lines", "", linesOf(), expect(0, false)},
		{"many lines differ", strings.Repeat("{\"n\": 1}\n", 12), linesOf(many...), expect(maxLines+1, false, "line 10 differs", "more lines differ")},
		{"a line of got is not JSON", "1\n2\n", linesOf("1", "{"), expect(0, true, "line 2 of got is not one JSON document")},
	})
}

func TestText(t *testing.T) {
	runCases(t, []goldenCase{
		{"same text", "a\nb\n", textOf("a\nb\n"), expect(0, false)},
		{"a line differs", "a\nb\nc\n", textOf("a\nB\nc\n"),
			expect(1, false, "x.golden: got differs from the golden file (-got +want)", `"B\n"`, `"b\n"`)},
		{"spacing counts in text", "a b\n", textOf("a  b\n"), expect(1, false)},
	})
}

func TestMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "testdata", "none.golden.json")
	o := tbtest.Run(t, func(tb testing.TB) { JSON(tb, path, []byte(`{}`)) })
	if !strings.Contains(o.Fatal, "none.golden.json") || !strings.Contains(o.Fatal, "go test -update creates it") {
		t.Errorf("a missing golden file reported %+v, want a fatal naming it and -update", o)
	}
}

// TestUpdate writes each kind of golden file with -update, then checks that
// the written file has the expected bytes and passes the comparison.
func TestUpdate(t *testing.T) {
	tests := []struct {
		name  string
		check func(tb testing.TB, path string)
		want  string
	}{
		{"json text", func(tb testing.TB, path string) { JSON(tb, path, []byte(`{"b":1,"a":[2]}`)) }, "{\n  \"b\": 1,\n  \"a\": [\n    2\n  ]\n}\n"},
		{"json value", func(tb testing.TB, path string) { JSON(tb, path, map[string]int{"b": 1, "a": 2}) }, "{\n  \"a\": 2,\n  \"b\": 1\n}\n"},
		{"json lines", func(tb testing.TB, path string) { JSONLines(tb, path, [][]byte{[]byte(`{"a":1}`), []byte(`2`)}) }, "{\"a\":1}\n2\n"},
		{"text", func(tb testing.TB, path string) { Text(tb, path, "one\ntwo") }, "one\ntwo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "testdata", "new", "x.golden")
			*update = true
			o := tbtest.Run(t, func(tb testing.TB) { tt.check(tb, path) })
			*update = false
			if diff := cmp.Diff(o, tbtest.Outcome{Logs: []string{"updated " + path}}); diff != "" {
				t.Errorf("updating reported (-got +want):\n%s", diff)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(b); got != tt.want {
				t.Errorf("updated file holds %q, want %q", got, tt.want)
			}
			if o := tbtest.Run(t, func(tb testing.TB) { tt.check(tb, path) }); len(o.Errors) > 0 || o.Fatal != "" {
				t.Errorf("the updated file does not compare equal: %+v", o)
			}
		})
	}
}

func keys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
