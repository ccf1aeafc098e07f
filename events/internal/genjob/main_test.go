package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events/jobfields"
)

// moduleRoot is the module's folder, from this package's.
const moduleRoot = "../../.."

// TestGeneratedFilesAreCurrent regenerates every file in memory and
// compares it with the file checked in: a change to the field table, or to
// the generator, without `go generate ./...` fails here.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	for name, pkg := range packages {
		for _, o := range pkg.outputs {
			path := filepath.Join(moduleRoot, pkg.dir, o.name)
			t.Run(filepath.ToSlash(filepath.Join(pkg.dir, o.name)), func(t *testing.T) {
				cur, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go generate ./... in the module)", err)
				}
				want, err := o.gen(cur)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(cur), "\n")); diff != "" {
					t.Errorf("%s is stale: run `go generate ./...` (genjob %s) (-generated +file):\n%s", path, name, diff)
				}
			})
		}
	}
}

// TestGenerateIsStable checks that generating from a generated file gives
// it back, so that the OpenAPI document, rewritten in part, settles.
func TestGenerateIsStable(t *testing.T) {
	for _, pkg := range packages {
		for _, o := range pkg.outputs {
			cur, err := os.ReadFile(filepath.Join(moduleRoot, pkg.dir, o.name))
			if err != nil {
				t.Fatal(err)
			}
			once, err := o.gen(cur)
			if err != nil {
				t.Fatal(err)
			}
			twice, err := o.gen(once)
			if err != nil {
				t.Fatal(err)
			}
			if string(once) != string(twice) {
				t.Errorf("%s: a second generation differs from the first", o.name)
			}
		}
	}
}

func TestTableIsSound(t *testing.T) {
	if err := jobfields.Check(jobfields.Fields); err != nil {
		t.Fatal(err)
	}
}

func TestRunRefusesUnknownPackages(t *testing.T) {
	for _, args := range [][]string{nil, {"nowhere"}, {"events", "running"}} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) succeeded; want an error", args)
		}
	}
}

// TestOpenAPISplice rewrites the job's schemas in a small document: the
// rest stays byte for byte, and a document without them is refused.
func TestOpenAPISplice(t *testing.T) {
	doc := "{\n  \"components\": {\n    \"schemas\": {\n      \"Other\": {\"type\": \"string\"},\n" +
		"      \"Key\": {},\n      \"Job\": {\"type\": \"object\"}\n    }\n  }\n}\n"
	got, err := genOpenAPI([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range []string{"{\n  \"components\": {\n    \"schemas\": {\n      \"Other\": {\"type\": \"string\"},\n      \"Key\": {\n", "\n    }\n  }\n}\n"} {
		if !strings.Contains(string(got), keep) {
			t.Errorf("the rewritten document lost %q:\n%s", keep, got)
		}
	}
	for _, f := range jobfields.Fields {
		if !strings.Contains(string(got), `"`+f.JSON+`": {`) {
			t.Errorf("the rewritten document has no property %s", f.JSON)
		}
	}
	if _, err := genOpenAPI([]byte(`{"components": {"schemas": {"Job": {}}}}`)); err == nil {
		t.Error("a document without a Key schema was rewritten; want an error")
	}
}
