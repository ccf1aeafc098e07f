package simulation

import (
	"bytes"
	"errors"
	"net/http"
	"reflect"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// selection is a partial response's field selection, the fields
// parameter of every Google API
// (https://cloud.google.com/bigquery/docs/api-performance#partial-response):
// the members selected, each with what is selected beneath it. A member
// whose selection is nil is selected whole; a nil selection selects the
// whole answer.
//
// The parser and filter are the simulation's own: the one Go library of
// this syntax (github.com/teambition/json-mask-go) is unmaintained, panics
// on an unbalanced ")", and is blind to the resource's schema, so it
// cannot refuse a name the API does not know — the refusal that makes a
// misspelt selection fail against BigQuery and must make it fail here. The
// JSON itself is streamed by jsontext.
type selection map[string]selection

// errFields is why a fields parameter is refused.
var errFields = errors.New("invalid field selection")

// fieldsError is the answer to a selection the API cannot take: 400
// invalidParameter on the fields parameter, "Invalid field selection"
// naming the offending name, as Google's JSON APIs answer it (Drive v3's
// "Invalid field selection owner" for a permission field it lacks). Newer
// Google front ends word it "Error expanding 'fields' parameter"; both are
// a 400 INVALID_ARGUMENT, which is what a client acts on.
func fieldsError(name string) *apiError {
	return &apiError{status: http.StatusBadRequest, reason: "invalidParameter", message: "Invalid field selection " + name,
		location: "fields", locationType: "parameter"}
}

// requestedFields is the selection of r's fields parameter for an answer
// shaped as the API type shape, nil when it selects everything: absent, or
// empty (cloud.google.com/go/bigquery cancels with an empty one).
func requestedFields(r *http.Request, shape reflect.Type) (selection, *apiError) {
	s := r.URL.Query().Get("fields")
	if s == "" {
		return nil, nil
	}
	sel, bad := parseFields(s, shape)
	if bad != "" {
		return nil, fieldsError(bad)
	}
	return sel, nil
}

// parseFields parses s, a comma-separated list of paths (a/b) and
// sub-selections (a(b,c)), checking every name against shape. It returns
// what it could not take: the first unknown name, or s when s is
// malformed.
//
// A "*" selects every member of its object; the simulation does not take
// a selection beneath a "*".
func parseFields(s string, shape reflect.Type) (selection, string) {
	p := &fieldsParser{s: s}
	sel := selection{}
	if err := p.list(sel, shape); err != nil {
		return nil, p.bad
	}
	if p.pos != len(s) {
		return nil, s
	}
	return sel, ""
}

type fieldsParser struct {
	s   string
	pos int
	bad string // what was refused
}

// list parses item (',' item)* into sel, up to a ")" or the end.
func (p *fieldsParser) list(sel selection, shape reflect.Type) error {
	for {
		if err := p.item(sel, shape); err != nil {
			return err
		}
		if !p.eat(',') {
			return nil
		}
	}
}

// item parses name ('/' item | '(' list ')')? into sel.
func (p *fieldsParser) item(sel selection, shape reflect.Type) error {
	name := p.name()
	if name == "" {
		return p.malformed()
	}
	member, ok := memberType(shape, name)
	if !ok {
		p.bad = name
		return errFields
	}
	switch {
	case p.eat('/'):
		if name == "*" {
			return p.malformed()
		}
		return p.item(sel.beneath(name), member)
	case p.eat('('):
		if name == "*" {
			return p.malformed()
		}
		if err := p.list(sel.beneath(name), member); err != nil {
			return err
		}
		if !p.eat(')') {
			return p.malformed()
		}
	default:
		sel[name] = nil
	}
	return nil
}

func (p *fieldsParser) malformed() error {
	p.bad = p.s
	return errFields
}

func (p *fieldsParser) eat(c byte) bool {
	if p.pos < len(p.s) && p.s[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// name reads a member name: letters, digits and underscores, or "*".
func (p *fieldsParser) name() string {
	if p.eat('*') {
		return "*"
	}
	start := p.pos
	for p.pos < len(p.s) && isNameByte(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos]
}

func isNameByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// beneath is the selection under name, made for it unless name is
// selected whole already, which a narrower selection does not change.
func (s selection) beneath(name string) selection {
	sub, ok := s[name]
	switch {
	case ok && sub == nil:
		return selection{} // parsed and checked, then dropped
	case !ok:
		sub = selection{}
		s[name] = sub
	}
	return sub
}

// memberType is the type of the member a JSON object of type shape names
// name, by its JSON name: a struct field's, or a map's values'. A "*"
// names any member of an object.
func memberType(shape reflect.Type, name string) (reflect.Type, bool) {
	for shape.Kind() == reflect.Pointer || shape.Kind() == reflect.Slice || shape.Kind() == reflect.Array {
		shape = shape.Elem()
	}
	switch shape.Kind() {
	case reflect.Map:
		return shape.Elem(), true
	case reflect.Struct:
		if name == "*" {
			return shape, true
		}
		for i := range shape.NumField() {
			f := shape.Field(i)
			if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name && f.IsExported() {
				return f.Type, true
			}
		}
	}
	return nil, false
}

// filter copies the JSON value of data that sel selects.
func (s selection) filter(data []byte) ([]byte, error) {
	var out bytes.Buffer
	dec, enc := jsontext.NewDecoder(bytes.NewReader(data)), jsontext.NewEncoder(&out)
	if err := s.copy(dec, enc); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// copy copies the next value of dec to enc, as much of it as s selects:
// an object's selected members, each element of an array as s selects.
func (s selection) copy(dec *jsontext.Decoder, enc *jsontext.Encoder) error {
	if _, all := s["*"]; all || s == nil {
		return copyValue(dec, enc)
	}
	switch dec.PeekKind() {
	case '{':
		return s.copyObject(dec, enc)
	case '[':
		return s.copyArray(dec, enc)
	}
	return copyValue(dec, enc) // a null where an object may be
}

func (s selection) copyObject(dec *jsontext.Decoder, enc *jsontext.Encoder) error {
	if err := copyToken(dec, enc); err != nil {
		return err
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return err
		}
		sub, ok := s[name.String()]
		if !ok {
			if err := dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		if err := enc.WriteToken(name); err != nil {
			return err
		}
		if err := sub.copy(dec, enc); err != nil {
			return err
		}
	}
	return copyToken(dec, enc)
}

func (s selection) copyArray(dec *jsontext.Decoder, enc *jsontext.Encoder) error {
	if err := copyToken(dec, enc); err != nil {
		return err
	}
	for dec.PeekKind() != ']' {
		if err := s.copy(dec, enc); err != nil {
			return err
		}
	}
	return copyToken(dec, enc)
}

func copyToken(dec *jsontext.Decoder, enc *jsontext.Encoder) error {
	t, err := dec.ReadToken()
	if err != nil {
		return err
	}
	return enc.WriteToken(t)
}

func copyValue(dec *jsontext.Decoder, enc *jsontext.Encoder) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	return enc.WriteValue(v)
}
