package simulation

import (
	"encoding/json"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"
)

// TestJSONWriterStrings checks that keys and string values come out as
// valid JSON, UTF-8 included, that decodes to what was written, with
// invalid UTF-8 as U+FFFD.
func TestJSONWriterStrings(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "SELECT 1", "SELECT 1"},
		{"quotes and backslashes", `"a\b"`, `"a\b"`},
		{"control characters", "\x00\x01\b\f\n\r\t\x1f\x7f", "\x00\x01\b\f\n\r\t\x1f\x7f"},
		{"html and separators", "<b>&amp;</b> \u2028\u2029", "<b>&amp;</b> \u2028\u2029"},
		{"unicode", "ünïcödé 日本語 🎉", "ünïcödé 日本語 🎉"},
		{"invalid utf-8", "bad \xff\xfe cut \xe2\x82", "bad \uFFFD\uFFFD cut \uFFFD\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w jsonWriter
			w.obj()
			w.key(tt.in).str(tt.in)
			w.key("list").arr()
			w.str(tt.in)
			w.endArr()
			w.endObj()
			if !jsontext.Value(w.b).IsValid() {
				t.Fatalf("invalid JSON (RFC 7493) %q", w.b)
			}
			var got map[string]any
			if err := json.Unmarshal(w.b, &got); err != nil {
				t.Fatalf("invalid JSON %q: %v", w.b, err)
			}
			want := map[string]any{tt.want: tt.want, "list": []any{tt.want}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s decodes differently (-want +got):\n%s", w.b, diff)
			}
		})
	}
}
