package main

import (
	"encoding/json"
	"fmt"

	"github.com/bqobserver/bqobserver/events/jobfields"
)

// genTableSchema writes the BigQuery job history's table schema, in the JSON
// form of the bq tool and the API (an array of TableFieldSchema): the
// fields' columns, then the columns the history adds.
func genTableSchema([]byte) ([]byte, error) {
	b, err := json.MarshalIndent(jobfields.TableColumns(), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// rowSetters name the method of the history's row type that sets a
// field's column, by kind and, for strings and lists, conversion.
var rowSetters = map[jobfields.Kind]map[jobfields.Conversion]string{
	jobfields.String:        {jobfields.Copy: "setString", jobfields.TableName: "setTable"},
	jobfields.State:         {jobfields.Copy: "setString"},
	jobfields.Flag:          {jobfields.Copy: "setBool"},
	jobfields.Strings:       {jobfields.Copy: "setStrings", jobfields.TableName: "setTables"},
	jobfields.StringMap:     {jobfields.KeyValue: "setKeyValues"},
	jobfields.Time:          {jobfields.Copy: "setTime"},
	jobfields.OptionalInt64: {jobfields.Copy: "setInt64Ptr"},
	jobfields.OptionalBool:  {jobfields.Copy: "setBoolPtr"},
	jobfields.Error:         {jobfields.ErrorResult: "setError"},
}

// derivedTypes are the Go type and the setter of a history column, by
// BigQuery type; a NULLABLE number or boolean is a pointer.
var derivedTypes = map[string]struct{ required, nullable [2]string }{
	"STRING":    {[2]string{"string", "setString"}, [2]string{"string", "setString"}},
	"INT64":     {[2]string{"int64", "setInt64"}, [2]string{"*int64", "setInt64Ptr"}},
	"FLOAT64":   {[2]string{"float64", "setFloat"}, [2]string{"*float64", "setFloatPtr"}},
	"BOOL":      {[2]string{"bool", "setBool"}, [2]string{"*bool", "setBoolPtr"}},
	"TIMESTAMP": {[2]string{"time.Time", "setTime"}, [2]string{"time.Time", "setTime"}},
}

// derivedType returns the Go type and setter of a history column.
func derivedType(h jobfields.HistoryColumn) (typ, setter string) {
	t, ok := derivedTypes[h.Column.Type]
	if !ok {
		panic(fmt.Sprintf("history column %s: no Go type for %s", h.Column.Name, h.Column.Type))
	}
	pair := t.nullable
	if h.Column.Mode == jobfields.Required {
		pair = t.required
	}
	return pair[0], pair[1]
}

// genRow writes the history's derived values and the conversion of a job
// into a row of the table.
func genRow([]byte) ([]byte, error) {
	g := &goFile{pkg: "history"}
	g.use("google.golang.org/protobuf/reflect/protoreflect")
	g.use(eventsImport)
	g.line("// Derived are the values a row of the job history adds to the job's")
	g.line("// fields (jobfields.HistoryColumns), computed when it is written.")
	g.line("type Derived struct {")
	for _, h := range jobfields.HistoryColumns {
		typ, _ := derivedType(h)
		if typ == "time.Time" {
			g.use("time")
		}
		g.comment("\t", h.Column.Description)
		g.line("\t%s %s", h.Name, typ)
	}
	g.line("}\n")
	g.line("// columns are the table's top-level columns in the order of its schema,")
	g.line("// and so of the row descriptor's fields.")
	g.line("var columns = [...]string{")
	for _, c := range jobfields.TableColumns() {
		g.line("\t%q,", c.Name)
	}
	g.line("}\n")
	g.line("// fill sets the columns of m, a row, from j and d.")
	g.line("func (r *rowType) fill(m protoreflect.Message, j *events.Job, d *Derived) {")
	col := 0
	for _, f := range jobfields.Fields {
		g.line("\tr.%s(m, %d, %s)", fieldSetter(f), col, fieldValue(f))
		col++
	}
	for _, h := range jobfields.HistoryColumns {
		_, setter := derivedType(h)
		g.line("\tr.%s(m, %d, d.%s)", setter, col, h.Name)
		col++
	}
	g.line("}")
	return g.source()
}

func fieldSetter(f jobfields.Field) string {
	s, ok := rowSetters[f.Kind][f.Column.From]
	if !ok {
		panic(fmt.Sprintf("field %s: no row setter for kind %d converted by %d", f.Name, f.Kind, f.Column.From))
	}
	return s
}

// fieldValue is the Go expression of field f of j.
func fieldValue(f jobfields.Field) string {
	switch {
	case f.Scope == jobfields.Key:
		return "j.Key." + f.Name
	case f.Kind == jobfields.State:
		return "string(j." + f.Name + ")"
	}
	return "j." + f.Name
}
