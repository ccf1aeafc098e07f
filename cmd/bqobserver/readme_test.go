package main

import (
	"os"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// TestREADMEDocumentsEveryFlag keeps the README's configuration table in
// step with the command line: every flag of every command is in it.
func TestREADMEDocumentsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("bqobserver"), kong.DefaultEnvars("BQOBSERVER"))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			if f.Name == "help" {
				continue
			}
			if !strings.Contains(string(readme), "--"+f.Name+"`") && !strings.Contains(string(readme), "--[no-]"+f.Name+"`") {
				t.Errorf("README.md does not document --%s (%s)", f.Name, strings.Join(f.Envs, ", "))
			}
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(parser.Model.Node)
}
