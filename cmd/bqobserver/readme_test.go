package main

import (
	"os"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// TestREADMEDocumentsEveryFlag keeps the README's configuration table in
// step with the command line: every flag of every command is in it, and a
// row that gives a flag's default as code gives the one the flag has.
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
	rows := map[string]string{} // "run --pull-streams" → "`8`"
	for line := range strings.Lines(string(readme)) {
		cols := strings.Split(line, "|")
		if len(cols) > 3 && strings.HasPrefix(strings.TrimSpace(cols[1]), "`") {
			rows[strings.Trim(strings.TrimSpace(cols[1]), "`")] = strings.TrimSpace(cols[2])
		}
	}
	compared := 0
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		prefix := ""
		if n.Type == kong.CommandNode {
			prefix = n.Name + " "
		}
		for _, f := range n.Flags {
			if f.Name == "help" {
				continue
			}
			if !strings.Contains(string(readme), "--"+f.Name+"`") && !strings.Contains(string(readme), "--[no-]"+f.Name+"`") {
				t.Errorf("README.md does not document --%s (%s)", f.Name, strings.Join(f.Envs, ", "))
			}
			def, documented := rows[prefix+"--"+f.Name]
			if !documented {
				def = rows[prefix+"--[no-]"+f.Name]
			}
			// The default as code, before any gloss: `9600h` (400 days).
			if code, ok := strings.CutPrefix(def, "`"); ok && f.Default != "" {
				compared++
				if code, _, _ = strings.Cut(code, "`"); code != f.Default {
					t.Errorf("README.md gives %s--%s the default %s; the flag's is %q", prefix, f.Name, def, f.Default)
				}
			}
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(parser.Model.Node)
	if compared == 0 {
		t.Error("no row of the README's configuration table gives a default to compare")
	}
}
