package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/bqobserver/bqobserver/events/jobfields"
)

// genOpenAPI rewrites the schemas of a job and its key in the OpenAPI
// document, and leaves the rest of it as it is.
func genOpenAPI(doc []byte) ([]byte, error) {
	for _, s := range []struct {
		name   string
		schema func(indent string) string
	}{{"Key", keySchema}, {"Job", jobSchema}} {
		start, end, err := locate(doc, "/components/schemas/"+s.name)
		if err != nil {
			return nil, err
		}
		line := doc[bytes.LastIndexByte(doc[:start], '\n')+1 : start]
		indent := string(line[:len(line)-len(bytes.TrimLeft(line, " "))])
		doc = bytes.Join([][]byte{doc[:start], []byte(s.schema(indent)), doc[end:]}, nil)
	}
	if !jsontext.Value(doc).IsValid() {
		return nil, errors.New("the rewritten OpenAPI document is not valid JSON")
	}
	return doc, nil
}

// locate returns where the value at pointer ptr begins and ends in doc.
func locate(doc []byte, ptr string) (start, end int, err error) {
	d := jsontext.NewDecoder(bytes.NewReader(doc))
	for {
		if _, err := d.ReadToken(); err == io.EOF {
			return 0, 0, fmt.Errorf("the OpenAPI document has no %s", ptr)
		} else if err != nil {
			return 0, 0, fmt.Errorf("reading the OpenAPI document: %w", err)
		}
		if string(d.StackPointer()) != ptr || d.PeekKind() != '{' {
			continue
		}
		start = int(d.InputOffset())
		start += bytes.IndexByte(doc[start:], '{')
		if err := d.SkipValue(); err != nil {
			return 0, 0, fmt.Errorf("reading %s: %w", ptr, err)
		}
		return start, int(d.InputOffset()), nil
	}
}

// keySchema is the schema of a job's key, its members one a line.
func keySchema(indent string) string {
	var required []string
	var props []property
	for _, f := range fieldsOf(jobfields.Key) {
		required = append(required, f.JSON)
		props = append(props, property{f.JSON, schemaOf(f)})
	}
	return object(indent, "", required, props)
}

// jobSchema is the schema of a job as the API sends it.
func jobSchema(indent string) string {
	required := []string{"key"}
	props := []property{{"key", `{"$ref": "#/components/schemas/Key"}`}}
	forAPI(func(f jobfields.Field) {
		if f.Kind == jobfields.State {
			required = append(required, f.JSON)
		}
		props = append(props, property{f.JSON, schemaOf(f)})
	}, func(name, json, _ string) {
		json, _, _ = strings.Cut(json, ",")
		switch {
		case name == "Stale":
			required = append(required, json)
			props = append(props, property{json, schema(`"type": "boolean"`, staleDoc)})
		case strings.HasSuffix(json, "_preview"):
			text := strings.TrimSuffix(json, "_preview")
			props = append(props, property{json, schema(`"type": "boolean"`, fmt.Sprintf(previewDoc, text))})
		case strings.HasSuffix(json, "_bytes"):
			text := strings.TrimSuffix(json, "_bytes")
			props = append(props, property{json, schema(`"type": "integer"`, fmt.Sprintf(bytesDoc, text))})
		case strings.HasSuffix(json, "_hidden"):
			text := strings.TrimSuffix(json, "_hidden")
			props = append(props, property{json, schema(`"type": "boolean"`, fmt.Sprintf(hiddenDoc, text))})
		}
	})
	return object(indent, "A job's state: the fold of its events. Absent fields are not known.", required, props)
}

type property struct{ name, schema string }

// object writes an object schema in the document's layout: one member a
// line, the properties one a line.
func object(indent, doc string, required []string, props []property) string {
	in := indent + "  "
	var b strings.Builder
	b.WriteString("{\n" + in + `"type": "object",` + "\n")
	if doc != "" {
		b.WriteString(in + `"description": ` + quote(doc) + ",\n")
	}
	quoted := make([]string, len(required))
	for i, r := range required {
		quoted[i] = quote(r)
	}
	b.WriteString(in + `"required": [` + strings.Join(quoted, ", ") + "],\n")
	b.WriteString(in + `"properties": {` + "\n")
	for i, p := range props {
		b.WriteString(in + "  " + quote(p.name) + ": " + p.schema)
		if i < len(props)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(in + "}\n" + indent + "}")
	return b.String()
}

// schemaOf is the schema of a field's value in the API.
func schemaOf(f jobfields.Field) string {
	var typ string
	switch f.Kind {
	case jobfields.String, jobfields.State:
		typ = `"type": "string"`
		if len(f.Enum) > 0 {
			quoted := make([]string, len(f.Enum))
			for i, e := range f.Enum {
				quoted[i] = quote(e)
			}
			typ += `, "enum": [` + strings.Join(quoted, ", ") + "]"
		}
	case jobfields.Flag, jobfields.OptionalBool:
		typ = `"type": "boolean"`
	case jobfields.Strings:
		typ = `"type": "array", "items": {"type": "string"}`
	case jobfields.StringMap:
		typ = `"type": "object", "additionalProperties": {"type": "string"}`
	case jobfields.Time:
		typ = `"type": "string", "format": "date-time"`
	case jobfields.OptionalInt64:
		typ = `"type": "integer"`
	case jobfields.Error:
		return `{"$ref": "#/components/schemas/JobError", "description": ` + quote(f.Doc) + "}"
	}
	return schema(typ, f.Doc)
}

func schema(typ, doc string) string { return "{" + typ + `, "description": ` + quote(doc) + "}" }

func quote(s string) string {
	b, err := jsontext.AppendQuote(nil, s)
	if err != nil {
		panic(fmt.Sprintf("quoting %q: %v", s, err))
	}
	return string(b)
}
