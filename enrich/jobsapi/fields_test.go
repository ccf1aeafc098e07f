package jobsapi

import (
	"reflect"
	"strings"
	"testing"

	bq "google.golang.org/api/bigquery/v2"
)

// TestListFieldsNameTheAPIsFields walks the partial-response selection of
// ListOpen over the API's types: a name BigQuery does not know would make
// every listing fail with 400, and the simulation does not check it.
func TestListFieldsNameTheAPIsFields(t *testing.T) {
	rest, err := walk(reflect.TypeFor[bq.JobList](), listFields, "")
	if err != nil {
		t.Fatal(err)
	}
	if rest != "" {
		t.Fatalf("unbalanced selection, %q left", rest)
	}
}

// walk checks the comma-separated selection s, up to a closing parenthesis,
// against the struct type typ, and returns what follows.
func walk(typ reflect.Type, s, at string) (string, error) {
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
		typ = typ.Elem()
	}
	for {
		i := strings.IndexAny(s, ",()")
		name := s
		if i >= 0 {
			name = s[:i]
		}
		f, ok := field(typ, name)
		if !ok {
			return "", &unknownField{at + name}
		}
		s = s[len(name):]
		if strings.HasPrefix(s, "(") {
			var err error
			if s, err = walk(f.Type, s[1:], at+name+"/"); err != nil {
				return "", err
			}
			s = strings.TrimPrefix(s, ")")
		}
		switch {
		case strings.HasPrefix(s, ","):
			s = s[1:]
		default:
			return s, nil
		}
	}
}

func field(typ reflect.Type, name string) (reflect.StructField, bool) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

type unknownField struct{ path string }

func (e *unknownField) Error() string { return "the API has no field " + e.path }
