package main

import (
	"github.com/bqobserver/bqobserver/events/jobfields"
)

// genPlausible writes the part of package events' plausibility rule that
// lists facts: every int64 fact is an amount or count, every time fact a
// job time.
func genPlausible([]byte) ([]byte, error) {
	g := &goFile{pkg: "events"}
	g.use("time")
	g.line("// dropImplausible clears the facts of f that the plausibility rule")
	g.line("// (plausible.go) refuses, job times judged against at, recording them")
	g.line("// in d.")
	g.line("func (f *Facts) dropImplausible(d *dropper, at time.Time) {")
	for _, f := range fieldsOf(jobfields.Fact) {
		switch f.Kind {
		case jobfields.OptionalInt64:
			g.line("\td.count(%q, &f.%s)", f.JSON, f.Name)
		case jobfields.Time:
			g.line("\td.time(%q, &f.%s, at)", f.JSON, f.Name)
		}
	}
	g.line("}")
	return g.source()
}
