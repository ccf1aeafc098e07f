package main

import (
	"fmt"

	"github.com/bqobserver/bqobserver/events/jobfields"
)

const eventsImport = "github.com/bqobserver/bqobserver/events"

// The API adds to a job's fields its stale flag, after the state, and, after
// a text the API may send only the start of, whether it did, the length of
// the whole text, and whether the text is hidden from the caller.
const (
	staleDoc   = "No event for longer than any job can run: its end was probably missed."
	previewDoc = "This answer carries only the start of the %s text (lists and streams); the job's detail carries it whole."
	bytesDoc   = "Length of the whole %s text, when %[1]s is a preview."
	hiddenDoc  = "The caller may not read this job's %s text: it is left out, which does not mean the job has none."
)

// apiTypes are the Go types of the API's form, by kind, where they differ
// from the domain's.
var apiTypes = map[jobfields.Kind]string{jobfields.State: "string", jobfields.Error: "*errorJSON"}

// genWire writes the API's form of a job and the conversion to it.
func genWire([]byte) ([]byte, error) {
	g := &goFile{pkg: "running"}
	g.use("time")
	g.line("// jobJSON is a job as the API sends it. Its field names are those of")
	g.line("// events.Job's JSON, so that a tool reading one reads the other, plus the")
	g.line("// stale flag and, in lists and streams, whether the query text was shortened.")
	g.line("type jobJSON struct {")
	g.line("\tKey keyJSON `json:\"key\"`")
	forAPI(func(f jobfields.Field) {
		typ := apiTypes[f.Kind]
		if typ == "" {
			typ = goType(f, "events.")
		}
		g.line("\t%s %s %s", f.Name, typ, apiTag(f))
	}, func(name, json, typ string) {
		g.line("\t%s %s `json:\"%s\"`", name, typ, json)
	})
	g.line("}\n")
	g.line("// keyJSON is a job's key as the API sends it.")
	g.line("type keyJSON struct {")
	for _, f := range fieldsOf(jobfields.Key) {
		g.line("\t%s string `json:\"%s\"`", f.Name, f.JSON)
	}
	g.line("}\n")
	g.line("// errorJSON is a job's error as the API sends it.")
	g.line("type errorJSON struct {")
	g.line("\tCode    string `json:\"code,omitempty\"`")
	g.line("\tMessage string `json:\"message,omitempty\"`")
	g.line("}\n")
	genJobOf(g)
	return g.source()
}

// forAPI calls field for each field of the API's form after the key, and
// extra for each member the API adds, in the order of the API's JSON.
func forAPI(field func(jobfields.Field), extra func(name, json, typ string)) {
	for _, f := range fieldsOf(jobfields.Event, jobfields.Fact, jobfields.Derived) {
		field(f)
		switch {
		case f.Kind == jobfields.State:
			extra("Stale", "stale", "bool")
		case f.Fold == jobfields.TruncatedFlag:
			text := textOf(f)
			extra(text.Name+"Preview", text.JSON+"_preview,omitempty", "bool")
			extra(text.Name+"Bytes", text.JSON+"_bytes,omitempty", "int")
			extra(text.Name+"Hidden", text.JSON+"_hidden,omitempty", "bool")
		}
	}
}

// textOf returns the text a truncation flag qualifies.
func textOf(flag jobfields.Field) jobfields.Field {
	for i, f := range jobfields.Fields {
		if f.Name == flag.Name {
			return jobfields.Fields[i-1]
		}
	}
	panic("no field " + flag.Name)
}

// apiTag is the tag of a field of the API's form: the state is always sent.
func apiTag(f jobfields.Field) string {
	if f.Kind == jobfields.State {
		return fmt.Sprintf("`json:\"%s\"`", f.JSON)
	}
	return tag(f, "")
}

// genJobOf writes jobOf.
func genJobOf(g *goFile) {
	g.line("// jobOf converts a job for the API. preview > 0 shortens the query text to")
	g.line("// at most that many bytes (on a character boundary), marking it so; a")
	g.line("// hidden view leaves the text out and says that it is hidden.")
	g.line("func jobOf(v *view, preview int) *jobJSON {")
	g.line("\tj := &v.job")
	g.line("\tw := &jobJSON{")
	g.line("\t\tKey: keyJSON{")
	for _, f := range fieldsOf(jobfields.Key) {
		g.copyField("\t\t\t", "j.Key", f)
	}
	g.line("\t\t},")
	forAPI(func(f jobfields.Field) {
		switch f.Kind {
		case jobfields.Error:
		case jobfields.State:
			g.line("\t\t%s: string(j.%[1]s),", f.Name)
		default:
			g.copyField("\t\t", "j", f)
		}
	}, func(name, _, _ string) {
		if name == "Stale" {
			g.line("\t\tStale: v.stale,")
		}
	})
	g.line("\t}")
	for _, f := range fieldsOf(jobfields.Event, jobfields.Fact) {
		switch f.Fold {
		case jobfields.CompleteText:
			flag := jobfields.Fields[indexOf(f)+1]
			g.line("\tif v.hidden {")
			g.line("\t\tw.%s, w.%s, w.%[1]sHidden = \"\", false, true", f.Name, flag.Name)
			g.line("\t} else if preview > 0 && len(j.%s) > preview {", f.Name)
			g.line("\t\tw.%s, w.%[1]sPreview, w.%[1]sBytes = clip(j.%[1]s, preview), true, len(j.%[1]s)", f.Name)
			g.line("\t}")
		}
		if f.Kind == jobfields.Error {
			g.line("\tif j.%s != nil {", f.Name)
			g.line("\t\tw.%s = &errorJSON{Code: j.%[1]s.Code, Message: j.%[1]s.Message}", f.Name)
			g.line("\t}")
		}
	}
	g.line("\treturn w")
	g.line("}")
}

// appenders name the function of jobjson.go that writes a member of the
// API's JSON, by kind.
var appenders = map[jobfields.Kind]string{
	jobfields.String: "appendStr", jobfields.Flag: "appendTrue", jobfields.Strings: "appendStrs",
	jobfields.StringMap: "appendMap", jobfields.Time: "appendTime", jobfields.OptionalInt64: "appendInt",
	jobfields.OptionalBool: "appendBool", jobfields.Error: "appendError",
}

// genJobJSON writes the API's fast encoder of a job.
func genJobJSON([]byte) ([]byte, error) {
	g := &goFile{pkg: "running"}
	g.use("strconv")
	g.use(eventsImport)
	g.line("// appendJobFields appends the JSON of jobOf(&view{*j, stale, hidden},")
	g.line("// preview), member by member; appendJob checks first that JSON can hold its")
	g.line("// times.")
	g.line("func appendJobFields(b []byte, j *events.Job, stale, hidden bool, preview int) []byte {")
	g.line("\tb = appendKey(append(b, `{\"key\":`...), j.Key)")
	forAPI(func(f jobfields.Field) {
		switch f.Fold {
		case jobfields.TruncatedFlag:
			return
		case jobfields.CompleteText:
			flag := jobfields.Fields[indexOf(f)+1]
			g.line("\tb = appendText(b, j.%s, j.%s, hidden, preview, %q, %q, %q, %q, %q)", f.Name, flag.Name,
				f.JSON, flag.JSON, f.JSON+"_preview", f.JSON+"_bytes", f.JSON+"_hidden")
			return
		}
		if f.Kind == jobfields.State {
			g.line("\tb = appendString(append(b, `,\"%s\":`...), string(j.%s))", f.JSON, f.Name)
			return
		}
		g.line("\tb = %s(b, %q, j.%s)", appenders[f.Kind], f.JSON, f.Name)
	}, func(name, _, _ string) {
		if name == "Stale" {
			g.line("\tb = strconv.AppendBool(append(b, `,\"stale\":`...), stale)")
		}
	})
	g.line("\treturn append(b, '}')")
	g.line("}\n")
	g.line("// appendKey appends the JSON of a job's key.")
	g.line("func appendKey(b []byte, k events.JobKey) []byte {")
	for i, f := range fieldsOf(jobfields.Key) {
		sep := ","
		if i == 0 {
			sep = "{"
		}
		g.line("\tb = appendString(append(b, `%s\"%s\":`...), k.%s)", sep, f.JSON, f.Name)
	}
	g.line("\treturn append(b, '}')")
	g.line("}\n")
	g.line("// encodableTimes reports whether JSON can hold every time of j: years 0")
	g.line("// to 9999.")
	g.line("func encodableTimes(j *events.Job) bool {")
	var times []string
	for _, f := range fieldsOf(jobfields.Fact, jobfields.Derived) {
		if f.Kind == jobfields.Time {
			times = append(times, fmt.Sprintf("encodable(j.%s)", f.Name))
		}
	}
	g.conjunction(times)
	g.line("}")
	return g.source()
}

func indexOf(f jobfields.Field) int {
	for i, x := range jobfields.Fields {
		if x.Name == f.Name {
			return i
		}
	}
	panic("no field " + f.Name)
}

// genSame writes sameJob.
func genSame([]byte) ([]byte, error) {
	g := &goFile{pkg: "running"}
	g.use(eventsImport)
	g.line("// sameJob reports whether two states of a job look the same to every reader")
	g.line("// of the API, so that a duplicate event publishes no change.")
	g.line("func sameJob(a, b *events.Job) bool {")
	var terms []string
	for _, f := range jobfields.Fields {
		x, y := "a."+f.Name, "b."+f.Name
		if f.Scope == jobfields.Key {
			x, y = "a.Key."+f.Name, "b.Key."+f.Name
		}
		switch f.Kind {
		case jobfields.String, jobfields.Flag, jobfields.State:
			terms = append(terms, x+" == "+y)
		case jobfields.Strings:
			g.use("slices")
			terms = append(terms, fmt.Sprintf("slices.Equal(%s, %s)", x, y))
		case jobfields.StringMap:
			g.use("maps")
			terms = append(terms, fmt.Sprintf("maps.Equal(%s, %s)", x, y))
		case jobfields.Time:
			terms = append(terms, fmt.Sprintf("%s.Equal(%s)", x, y))
		case jobfields.OptionalInt64, jobfields.OptionalBool, jobfields.Error:
			terms = append(terms, fmt.Sprintf("samePtr(%s, %s)", x, y))
		}
	}
	g.conjunction(terms)
	g.line("}")
	return g.source()
}
