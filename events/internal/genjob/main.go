// Command genjob writes, from the field table of package jobfields, the code
// and documents that list a job's fields: in package events the job's types,
// the fold's registers and the stored form with its encoder; in package
// running the API's form, its encoder, its equality check and the job's
// schema in the OpenAPI document; in package schema the BigQuery job
// history's table schema; in package history the conversion of a job into a
// row of that table. Each package runs it with go generate:
//
//	//go:generate go run ./internal/genjob events
//	//go:generate go run ../../events/internal/genjob running
//	//go:generate go run ../../events/internal/genjob history
//	//go:generate go run ../events/internal/genjob schema
//
// It writes into the current folder and refuses a table that
// jobfields.Check finds wrong.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bqobserver/bqobserver/events/jobfields"
)

// output is a file genjob writes and how: gen returns its new content
// given its current one (the OpenAPI document is rewritten in part only).
type output struct {
	name string
	gen  func(current []byte) ([]byte, error)
}

// packages are the packages genjob writes into, by the name go generate
// passes, with their folder in the module (for the test).
var packages = map[string]struct {
	dir     string
	outputs []output
}{
	"events": {"events", []output{
		{"job_gen.go", genJob},
		{"log_stored_gen.go", genStored},
		{"log_stored_gen_test.go", genStoredTest},
		{"plausible_gen.go", genPlausible},
	}},
	"running": {"projections/running", []output{
		{"wire_gen.go", genWire},
		{"jobjson_gen.go", genJobJSON},
		{"same_gen.go", genSame},
		{"openapi.json", genOpenAPI},
	}},
	"history": {"projections/history", []output{
		{"row_gen.go", genRow},
	}},
	"schema": {"schema", []output{
		{"job_versions.json", genTableSchema},
	}},
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "genjob:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range packages {
			if !yield(n) {
				return
			}
		}
	})
	if len(args) != 1 {
		return fmt.Errorf("usage: genjob %s", strings.Join(names, "|"))
	}
	pkg, ok := packages[args[0]]
	if !ok {
		return fmt.Errorf("no package %q; want one of %s", args[0], strings.Join(names, ", "))
	}
	if err := jobfields.Check(jobfields.Fields); err != nil {
		return fmt.Errorf("the field table: %w", err)
	}
	for _, o := range pkg.outputs {
		if err := write(".", o); err != nil {
			return err
		}
	}
	return nil
}

// write regenerates o in dir.
func write(dir string, o output) error {
	path := filepath.Join(dir, o.name)
	cur, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	b, err := o.gen(cur)
	if err != nil {
		return fmt.Errorf("generating %s: %w", path, err)
	}
	return os.WriteFile(path, b, 0o644)
}
