// Package golden compares what a test got with a golden file, by meaning
// rather than by bytes: JSON as values (objects by key, numbers by value,
// whatever the spacing), JSON lines line by line as values, text as text.
// A difference is reported as a go-cmp diff, got before want, naming the
// file. Running the tests with -update rewrites the files from what the
// tests got instead; review the rewritten files before committing them.
package golden

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files with what the tests got")

// hint is how to accept a deliberate change.
const hint = "if the change is deliberate, run go test -update and review the rewritten file"

// maxLines bounds how many differing lines JSONLines reports.
const maxLines = 10

// JSON compares got with the JSON document in file. got is JSON text when it
// is a []byte or a json.RawMessage, and otherwise a value that
// encoding/json marshals. With -update it writes got to file, indented.
func JSON(t testing.TB, file string, got any) {
	t.Helper()
	raw := marshal(t, file, got)
	if *update {
		var out bytes.Buffer
		if err := json.Indent(&out, raw, "", "  "); err != nil {
			t.Fatalf("%s: indenting got: %v", file, err)
		}
		write(t, file, append(out.Bytes(), '\n'))
		return
	}
	g, err := parse(raw)
	if err != nil {
		t.Fatalf("%s: got is not one JSON document: %v\n%s", file, err, raw)
	}
	w, err := parse(read(t, file))
	if err != nil {
		t.Fatalf("%s: the golden file is not one JSON document: %v", file, err)
	}
	if diff := cmp.Diff(g, w, numbers); diff != "" {
		t.Errorf("%s: got differs from the golden file (-got +want):\n%s%s", file, diff, hint)
	}
}

// JSONLines compares got, one JSON document per line, with the lines of
// file, each as a value. With -update it writes got to file, a line each.
func JSONLines[L ~string | ~[]byte](t testing.TB, file string, got []L) {
	t.Helper()
	if *update {
		var out bytes.Buffer
		for _, l := range got {
			out.Write([]byte(l))
			out.WriteByte('\n')
		}
		write(t, file, out.Bytes())
		return
	}
	want := lines(read(t, file))
	if len(got) != len(want) {
		t.Errorf("%s: got %d lines, want %d; %s", file, len(got), len(want), hint)
	}
	reported := 0
	for i := range min(len(got), len(want)) {
		g, err := parse([]byte(got[i]))
		if err != nil {
			t.Fatalf("%s: line %d of got is not one JSON document: %v\n%s", file, i+1, err, got[i])
		}
		w, err := parse(want[i])
		if err != nil {
			t.Fatalf("%s: line %d of the golden file is not one JSON document: %v", file, i+1, err)
		}
		if diff := cmp.Diff(g, w, numbers); diff != "" {
			if reported++; reported > maxLines {
				t.Errorf("%s: more lines differ; only the first %d are shown", file, maxLines)
				return
			}
			t.Errorf("%s: line %d differs (-got +want):\n%s%s", file, i+1, diff, hint)
		}
	}
}

// Text compares got with the text of file, line by line. With -update it
// writes got to file.
func Text(t testing.TB, file, got string) {
	t.Helper()
	if *update {
		write(t, file, []byte(got))
		return
	}
	want := string(read(t, file))
	if got != want {
		diff := cmp.Diff(strings.SplitAfter(got, "\n"), strings.SplitAfter(want, "\n"))
		t.Errorf("%s: got differs from the golden file (-got +want):\n%s%s", file, diff, hint)
	}
}

// numbers compares JSON numbers by value: 1, 1.0 and 1e0 are equal, and
// integers too large for a float64 are compared exactly.
var numbers = cmp.Comparer(func(a, b json.Number) bool {
	x, okX := new(big.Rat).SetString(string(a))
	y, okY := new(big.Rat).SetString(string(b))
	return okX && okY && x.Cmp(y) == 0
})

func marshal(t testing.TB, file string, got any) []byte {
	t.Helper()
	switch g := got.(type) {
	case []byte:
		return g
	case json.RawMessage:
		return g
	}
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatalf("%s: marshalling got: %v", file, err)
	}
	return b
}

// parse decodes exactly one JSON document, keeping numbers as written.
func parse(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("more after the first value")
	}
	return v, nil
}

// lines splits a file into its lines, without the final line's newline.
func lines(b []byte) [][]byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

func read(t testing.TB, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("reading the golden file: %v (go test -update creates it)", err)
	}
	return b
}

func write(t testing.TB, file string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatalf("updating the golden file: %v", err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatalf("updating the golden file: %v", err)
	}
	t.Logf("updated %s", file)
}
