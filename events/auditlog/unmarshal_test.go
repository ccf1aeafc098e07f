package auditlog

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/google/go-cmp/cmp"
)

// allFields lets cmp compare the unexported wire types field by field.
var allFields = cmp.Exporter(func(reflect.Type) bool { return true })

// wireCases are entries whose reading depends on the finer points of
// encoding/json: the fast decoder must read each of them, and read it alike.
var wireCases = []struct{ name, entry string }{
	{"case-insensitive names", `{"INSERTID":"a","protopayload":{"ServiceData":{"jobcompletedevent":{"EventName":"x"}}}}`},
	{"delimiters are not ignored", `{"insert_id":"a","log-name":"l","Resource":{"labels":{"projectid":"p","project_id":"q"}}}`},
	{"Unicode case folding", "{\"insertId\":\"a\",\"protoPayload\":{\"metadata\":{\"jobChange\":{\"job\":{\"jobStats\":{\"totalSlotM\u017f\":\"5\"}}}}}}"},
	{"exact name preferred", `{"insertid":"lower","insertId":"exact","INSERTID":"upper"}`},
	{"duplicate scalar, last wins", `{"insertId":"a","insertId":"b","timestamp":"t","timestamp":"u"}`},
	{"null keeps a scalar", `{"insertId":"a","insertId":null,"protoPayload":{"methodName":"m","methodName":null}}`},
	{"null keeps a struct", `{"resource":{"labels":{"project_id":"p"}},"resource":null}`},
	{"null clears a pointer", `{"protoPayload":{"serviceName":"s"},"protoPayload":null}`},
	{"duplicate object merges", `{"resource":{"labels":{"project_id":"p"}},"resource":{"labels":{"location":"EU"}}}`},
	{"duplicate pointer merges", `{"protoPayload":{"serviceName":"s"},"protoPayload":{"methodName":"m"}}`},
	{"duplicate list replaces", `{"protoPayload":{"metadata":{"jobChange":{"job":{"jobConfig":{"loadConfig":{"sourceUris":["a","b","c"],"sourceUris":["d"]}}}}}}}`},
	{"duplicate list of objects merges elements", `{"protoPayload":{"serviceData":{"jobCompletedEvent":{"job":{"jobStatistics":{"referencedTables":[{"projectId":"p","tableId":"t"}],"referencedTables":[{"datasetId":"d"}]}}}}}}`},
	{"duplicate map merges", `{"protoPayload":{"metadata":{"jobChange":{"job":{"jobConfig":{"labels":{"a":"1","b":"2"},"labels":{"b":"3","c":null}}}}}}}`},
	{"null list and map", `{"protoPayload":{"metadata":{"jobChange":{"job":{"jobConfig":{"labels":null,"tableCopyConfig":{"sourceTables":null}}}}}}}`},
	{"null in a list", `{"protoPayload":{"metadata":{"jobChange":{"job":{"jobStats":{"queryStats":{"referencedTables":["a",null,"b"]}}}}}}}`},
	{"empty list and map", `{"protoPayload":{"metadata":{"jobChange":{"job":{"jobConfig":{"labels":{},"loadConfig":{"sourceUris":[]}}}}}}}`},
	{"invalid UTF-8", "{\"insertId\":\"a\xffb\",\"logName\":\"\xc3\",\"protoPayload\":{\"metadata\":{\"jobChange\":{\"job\":{\"jobStats\":{\"totalSlotMs\":\"1\xfe\"}}}}}}"},
	{"invalid UTF-8 in a name", "{\"insert\xffId\":\"a\",\"insertId\":\"b\"}"},
	{"lone surrogates", `{"insertId":"\ud800x","logName":"\udc00\ud800\udc00","timestamp":"\ud83d"}`},
	{"escapes", `{"insertId":"\u0061\n\"\\\/","protoPayload":{"status":{"code":"\u0033","message":"a\tb"}}}`},
	{"int64 text shapes", `{"protoPayload":{"metadata":{"jobChange":{"job":{"jobStats":{"totalSlotMs":-1.5e3,"queryStats":{"totalBilledBytes":"\u0031","billingTier":null,"outputRowCount":true}}}}}}}`},
	{"code shapes", `{"protoPayload":{"status":{"code":3.0},"metadata":{"jobChange":{"job":{"jobStatus":{"errorResult":{"code":null}}}}}}}`},
	{"present shapes", `{"protoPayload":{"metadata":{"tableDataRead":null,"jobDeletion":{},"tableChange":[],"datasetChange":0,"jobDeletion":null}}}`},
	{"text and JSON payloads", `{"textPayload":"x","jsonPayload":null}`},
	{"cache hit null after true", `{"protoPayload":{"metadata":{"jobChange":{"job":{"jobStats":{"queryStats":{"cacheHit":true,"cacheHit":null}}}}}}}`},
	{"bare payload beside envelope", `{"serviceName":"s","metadata":{"jobInsertion":{}},"protoPayload":{"methodName":"m"}}`},
	{"unknown members skipped", `{"x":[1,{"y":[null,true,"\u00e9"]}],"insertId":"a","protoPayload":{"request":{"deep":[[[]]]}}}`},
	{"code with escapes and invalid UTF-8", "{\"protoPayload\":{\"status\":{\"code\":\"inv\\u0061lid\\ud800\xff\"}}}"},
	{"nesting at the limit", `{"x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`},
	{"null top level", `null`},
	{"whitespace", " \t\r\n{ \"insertId\" : \"a\" } \n"},
}

// TestWireDecodersAgree checks that the fast decoder reads the entries
// whose reading depends on encoding/json's finer points, and reads each
// exactly as encoding/json does.
func TestWireDecodersAgree(t *testing.T) {
	for _, tt := range wireCases {
		t.Run(tt.name, func(t *testing.T) {
			var fast, ref logEntry
			if err := jsonv2.Unmarshal([]byte(tt.entry), &fast, wireOptions); err != nil {
				t.Fatalf("fast decoder: %v", err)
			}
			if err := json.Unmarshal([]byte(tt.entry), &ref); err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
			if diff := cmp.Diff(ref, fast, allFields); diff != "" {
				t.Errorf("fast decoder differs from encoding/json (-encoding/json +fast):\n%s", diff)
			}
		})
	}
}

// TestWireDecodersReject checks that the fast decoder is no more lenient
// than encoding/json: what encoding/json rejects, it rejects too, so that
// Decode explains it.
func TestWireDecodersReject(t *testing.T) {
	tests := []struct{ name, entry string }{
		{"empty", ``},
		{"truncated", `{"insertId":"a"`},
		{"trailing value", `{} {}`},
		{"trailing comma", `{"insertId":"a",}`},
		{"single quotes", `{'insertId':'a'}`},
		{"comment", `{"insertId":"a" /* c */}`},
		{"byte order mark", "\uFEFF{}"},
		{"bad escape", `{"insertId":"\x41"}`},
		{"short unicode escape", `{"insertId":"\u41"}`},
		{"control character", "{\"insertId\":\"a\tb\"}"},
		{"leading zero", `{"x":01}`},
		{"bare NaN", `{"x":NaN}`},
		{"lone minus", `{"x":-}`},
		{"nesting past the limit", `{"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`},
		{"string for a struct", `{"resource":"r"}`},
		{"number for a string", `{"insertId":1}`},
		{"string for a bool", `{"protoPayload":{"metadata":{"jobChange":{"job":{"jobConfig":{"queryConfig":{"queryTruncated":"true"}}}}}}}`},
		{"object for a code", `{"protoPayload":{"status":{"code":{}}}}`},
		{"object for a list", `{"protoPayload":{"metadata":{"jobChange":{"job":{"jobStats":{"queryStats":{"referencedTables":{}}}}}}}}`},
		{"number for a label", `{"protoPayload":{"metadata":{"jobChange":{"job":{"jobConfig":{"labels":{"a":1}}}}}}}`},
		{"top-level array", `[{}]`},
		{"top-level string", `"entry"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fast, ref logEntry
			if err := json.Unmarshal([]byte(tt.entry), &ref); err == nil {
				t.Fatalf("encoding/json accepts %q: the case tests nothing", tt.entry)
			}
			if err := jsonv2.Unmarshal([]byte(tt.entry), &fast, wireOptions); err == nil {
				t.Errorf("the fast decoder accepts %q, which encoding/json rejects", tt.entry)
			}
		})
	}
}

// FuzzWireDecoders checks that whatever the fast decoder accepts,
// encoding/json accepts too and reads alike, so that Decode's results do
// not depend on which of the two read an entry.
func FuzzWireDecoders(f *testing.F) {
	for _, file := range fixtures(f) {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, tt := range wireCases {
		f.Add([]byte(tt.entry))
	}
	f.Fuzz(func(t *testing.T, entry []byte) {
		var fast, ref logEntry
		if jsonv2.Unmarshal(entry, &fast, wireOptions) != nil {
			return
		}
		if err := json.Unmarshal(entry, &ref); err != nil {
			t.Fatalf("the fast decoder accepts what encoding/json rejects: %v", err)
		}
		if diff := cmp.Diff(ref, fast, allFields); diff != "" {
			t.Errorf("fast decoder differs from encoding/json (-encoding/json +fast):\n%s", diff)
		}
	})
}
