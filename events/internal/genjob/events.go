package main

import (
	"fmt"

	"github.com/bqobserver/bqobserver/events/jobfields"
)

// genJob writes package events' job types and the fold's registers.
func genJob([]byte) ([]byte, error) {
	g := &goFile{pkg: "events"}
	g.use("time")
	genFacts(g)
	genJobType(g)
	genRegisters(g)
	genDerived(g)
	return g.source()
}

// genFacts writes Facts and the structs embedded in it.
func genFacts(g *goFile) {
	g.line("// Facts is everything known about a job at the moment of an event. Zero")
	g.line(`// values mean "not known"; a fold never lets an unknown erase a known value.`)
	g.line("type Facts struct {")
	embedded := map[string]bool{}
	for _, f := range fieldsOf(jobfields.Fact) {
		if f.Group == "" {
			g.comment("\t", f.Doc)
			g.line("\t%s %s %s", f.Name, goType(f, ""), tag(f, ""))
		} else if !embedded[f.Group] {
			embedded[f.Group] = true
			g.line("\t%s", f.Group)
		}
	}
	g.line("}\n")
	for _, grp := range jobfields.Groups {
		g.comment("", grp.Doc)
		g.line("type %s struct {", grp.Name)
		for _, f := range fieldsOf(jobfields.Fact) {
			if f.Group == grp.Name {
				g.comment("\t", f.Doc)
				g.line("\t%s %s %s", f.Name, goType(f, ""), tag(f, ""))
			}
		}
		g.line("}\n")
	}
}

// genJobType writes Job: the key, the fields every event carries, the
// facts, what the fold derives, and the registers.
func genJobType(g *goFile) {
	g.line("// Job is a job's current state: the fold of its events (Fold, Job.Apply).")
	g.line("// Package jobfields says how the fold keeps each of its fields.")
	g.line("type Job struct {")
	g.line("\t// Key identifies the job.")
	g.line("\tKey JobKey `json:\"key\"`")
	for _, f := range fieldsOf(jobfields.Event) {
		g.comment("\t", f.Doc)
		g.line("\t%s %s %s", f.Name, goType(f, ""), jobTag(f))
	}
	g.line("\tFacts")
	for _, f := range fieldsOf(jobfields.Derived) {
		g.comment("\t", f.Doc)
		g.line("\t%s %s %s", f.Name, goType(f, ""), tag(f, ""))
	}
	g.line("")
	g.line("\t// regs names the event that wrote each register: its place among")
	g.line("\t// writers, from 1, or 0 while the register is empty.")
	g.line("\tregs    [numRegisters]uint8")
	g.line("\twriters writers")
	g.line("}\n")
}

// jobTag is the tag of a field of Job: the state is always present.
func jobTag(f jobfields.Field) string {
	if f.Kind == jobfields.State {
		return fmt.Sprintf("`json:\"%s\"`", f.JSON)
	}
	return tag(f, "")
}

// registered returns the fields the fold keeps in registers of their own.
func registered() []jobfields.Field {
	var out []jobfields.Field
	for _, f := range fieldsOf(jobfields.Event, jobfields.Fact) {
		if f.Fold != jobfields.TruncatedFlag {
			out = append(out, f)
		}
	}
	return out
}

// setters name the function of fold.go that writes a register, by kind.
var setters = map[jobfields.Kind]string{
	jobfields.String: "setString", jobfields.State: "setString", jobfields.Flag: "setFlag",
	jobfields.Strings: "setStrings", jobfields.StringMap: "setMap", jobfields.Time: "setTime",
	jobfields.OptionalInt64: "setInt64", jobfields.OptionalBool: "setBool", jobfields.Error: "setError",
}

// genRegisters writes the registers' indexes and the code that writes them.
func genRegisters(g *goFile) {
	g.line("// The fold's registers, indexing Job.regs: one a field that the fold")
	g.line("// keeps as a register (a truncation flag shares its text's).")
	g.line("const (")
	for i, f := range registered() {
		if i == 0 {
			g.line("\treg%s = iota", f.Name)
		} else {
			g.line("\treg%s", f.Name)
		}
	}
	g.line("\tnumRegisters")
	g.line(")\n")
	g.line("// applyRegisters folds the fields e carries into j's registers.")
	g.line("func (j *Job) applyRegisters(w *write, e *Event) {")
	fields := fieldsOf(jobfields.Event, jobfields.Fact)
	for i, f := range fields {
		switch f.Fold {
		case jobfields.TruncatedFlag:
		case jobfields.CompleteText:
			flag := fields[i+1].Name
			g.line("\tsetText(j, w, reg%s, &j.%s, &j.%s, e.%[2]s, e.%[3]s)", f.Name, f.Name, flag)
		default:
			g.line("\t%s(j, w, reg%s, &j.%s, e.%[3]s)", setters[f.Kind], f.Name, f.Name)
		}
	}
	g.line("}\n")
}

// genDerived writes the code that folds what the fold derives from events.
func genDerived(g *goFile) {
	g.line("// applyDerived folds into j what it derives from e itself.")
	g.line("func (j *Job) applyDerived(e *Event) {")
	for _, f := range fieldsOf(jobfields.Derived) {
		switch f.Fold {
		case jobfields.EarliestEvent:
			g.line("\tj.%s = earliest(j.%[1]s, e.Time)", f.Name)
		case jobfields.LatestEvent:
			g.line("\tj.%s = latest(j.%[1]s, e.Time)", f.Name)
		case jobfields.AnyEvent:
			g.line("\tj.%s = j.%[1]s || e.Kind == %q && !e.failed()", f.Name, f.EventKind)
		}
	}
	g.line("}")
}

// writerMethods name the method of the log's jsonWriter that writes a
// stored fact, by kind, and whether it takes the "always" argument.
var writerMethods = map[jobfields.Kind]string{
	jobfields.String: "str", jobfields.Flag: "boolean", jobfields.Strings: "strs", jobfields.StringMap: "strMap",
	jobfields.Time: "time", jobfields.OptionalInt64: "intPtr", jobfields.OptionalBool: "boolPtr",
}

// genStored writes the stored form of the facts, its conversion to the
// domain's, and its encoder.
func genStored([]byte) ([]byte, error) {
	g := &goFile{pkg: "events"}
	g.use("time")
	g.line("// storedFacts is the stored form of Facts: the member \"facts\" of a")
	g.line("// storedEvent. omitzero keeps nil and empty lists, maps and pointers apart.")
	g.line("type storedFacts struct {")
	for _, f := range fieldsOf(jobfields.Fact) {
		g.line("\t%s %s %s", f.Name, goType(f, ""), tag(f, "omitzero"))
	}
	g.line("}\n")
	g.line("// facts returns the facts in the domain's form.")
	g.line("func (f *storedFacts) facts() Facts {")
	g.line("\treturn Facts{")
	factsLiteral(g, "f")
	g.line("\t}")
	g.line("}\n")
	g.line("// facts writes the members of f's storedFacts, in its order, with its")
	g.line("// names and omission rules.")
	g.line("func (w *jsonWriter) facts(f *Facts) {")
	for _, f := range fieldsOf(jobfields.Fact) {
		switch m := writerMethods[f.Kind]; f.Kind {
		case jobfields.String, jobfields.Time:
			g.line("\tw.%s(%q, f.%s, false)", m, f.JSON, f.Name)
		default:
			g.line("\tw.%s(%q, f.%s)", m, f.JSON, f.Name)
		}
	}
	g.line("}\n")
	if err := genFactReader(g); err != nil {
		return nil, err
	}
	return g.source()
}

// readerMethods name the method of the log's jsonReader that reads a
// stored fact, by kind.
var readerMethods = map[jobfields.Kind]string{
	jobfields.String: "str", jobfields.Flag: "boolean", jobfields.Strings: "strs", jobfields.StringMap: "strMap",
	jobfields.Time: "time", jobfields.OptionalInt64: "intPtr", jobfields.OptionalBool: "boolPtr",
}

// genFactReader writes the reader of one stored fact, which the log's
// cell values and the events topic's messages both hold.
func genFactReader(g *goFile) error {
	facts := fieldsOf(jobfields.Fact)
	if len(facts) > 64 {
		return fmt.Errorf("%d facts: the reader numbers them in a 64-bit set", len(facts))
	}
	g.line("// fact reads the value of the fact named name into f and returns the")
	g.line("// fact's number (below 64), or -1 when name is no fact's. The reader")
	g.line("// gives up (r.ok false) when the value strays from what the writer writes.")
	g.line("func (r *jsonReader) fact(name []byte, f *Facts) int {")
	g.line("\tswitch string(name) {")
	for i, f := range facts {
		g.line("\tcase %q:", f.JSON)
		g.line("\t\tr.%s(&f.%s)", readerMethods[f.Kind], f.Name)
		g.line("\t\treturn %d", i)
	}
	g.line("\t}")
	g.line("\treturn -1")
	g.line("}")
	return nil
}

// factsLiteral writes the members of a Facts literal taking each fact from
// the same field of src, its groups as nested literals.
func factsLiteral(g *goFile, src string) {
	group := ""
	for _, f := range fieldsOf(jobfields.Fact) {
		if f.Group != group {
			if group != "" {
				g.line("\t\t},")
			}
			if group = f.Group; group != "" {
				g.line("\t\t%s: %[1]s{", group)
			}
		}
		g.copyField("\t\t", src, f)
	}
	if group != "" {
		g.line("\t\t},")
	}
}

// genStoredTest writes the conversion the tests' reference encoder needs:
// from the domain's facts to their stored form.
func genStoredTest([]byte) ([]byte, error) {
	g := &goFile{pkg: "events"}
	g.line("// storedFactsOf returns the stored form of f.")
	g.line("func storedFactsOf(f *Facts) storedFacts {")
	g.line("\treturn storedFacts{")
	for _, f := range fieldsOf(jobfields.Fact) {
		g.copyField("\t\t", "f", f)
	}
	g.line("\t}")
	g.line("}")
	return g.source()
}
