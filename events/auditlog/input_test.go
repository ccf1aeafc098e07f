package auditlog

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
)

// splitInput is an Input with Data as a string, for readable diffs.
type splitInput struct {
	Name       string
	Data       string
	Attributes map[string]string
}

func splitInputs(ins []Input) []splitInput {
	out := make([]splitInput, len(ins))
	for i, in := range ins {
		out[i] = splitInput{Name: in.Name, Data: string(in.Data), Attributes: in.Attributes}
	}
	return out
}

func push(data string, attrs string) string {
	return `{"message":{"data":"` + base64.StdEncoding.EncodeToString([]byte(data)) + `","attributes":` + attrs +
		`,"messageId":"m1","publishTime":"2024-01-01T00:00:00Z"},"subscription":"projects/p/subscriptions/s"}`
}

func TestSplit(t *testing.T) {
	a, b, c := `{"insertId":"a"}`, `{"insertId":"b"}`, `{"insertId":"c"}`
	tests := []struct {
		name string
		data string
		want []splitInput
	}{
		{"single entry", "\n  " + a + "\n", []splitInput{{Name: "f", Data: a}}},
		{"single entry with BOM", "\uFEFF" + a, []splitInput{{Name: "f", Data: a}}},
		{"pretty single entry", "{\n  \"insertId\": \"a\"\n}\n", []splitInput{{Name: "f", Data: "{\n  \"insertId\": \"a\"\n}"}}},
		{"array", "[" + a + ",\n" + b + "," + c + "]", []splitInput{{Name: "f#1", Data: a}, {Name: "f#2", Data: b}, {Name: "f#3", Data: c}}},
		{"JSON lines", a + "\n" + b + "\n\n" + c + "\n", []splitInput{{Name: "f:1", Data: a}, {Name: "f:2", Data: b}, {Name: "f:4", Data: c}}},
		{"JSON lines with CRLF", a + "\r\n" + b + "\r\n", []splitInput{{Name: "f:1", Data: a}, {Name: "f:2", Data: b}}},
		{"concatenated pretty entries", "{\n \"insertId\": \"a\"\n}\n{\n \"insertId\": \"b\"\n}",
			[]splitInput{{Name: "f:1", Data: "{\n \"insertId\": \"a\"\n}"}, {Name: "f:4", Data: "{\n \"insertId\": \"b\"\n}"}}},
		{"JSON lines with a bad line", a + "\n{not json\n" + c,
			[]splitInput{{Name: "f:1", Data: a}, {Name: "f:2", Data: "{not json"}, {Name: "f:3", Data: c}}},
		{"one malformed entry", "{\"insertId\": \n\"a\"", []splitInput{{Name: "f", Data: "{\"insertId\": \n\"a\""}}},
		{"push envelope", push(a, `{"logging.googleapis.com/timestamp":"t"}`),
			[]splitInput{{Name: "f", Data: a, Attributes: map[string]string{"logging.googleapis.com/timestamp": "t"}}}},
		{"push envelopes as JSON lines", push(a, `{}`) + "\n" + push(b, `null`),
			[]splitInput{{Name: "f:1", Data: a, Attributes: map[string]string{}}, {Name: "f:2", Data: b}}},
		{"array of entries and envelopes", "[" + a + "," + push(b, `{"k":"v"}`) + "]",
			[]splitInput{{Name: "f#1", Data: a}, {Name: "f#2", Data: b, Attributes: map[string]string{"k": "v"}}}},
		{"message that is not an envelope", `{"message":"hello"}`, []splitInput{{Name: "f", Data: `{"message":"hello"}`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ins, err := Split("f", []byte(tt.data))
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			if diff := cmp.Diff(tt.want, splitInputs(ins)); diff != "" {
				t.Errorf("Split mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSplitBadFraming(t *testing.T) {
	tests := []struct {
		name string
		data string
		want ErrorReason
	}{
		{"empty", "", ReasonBadJSON},
		{"whitespace", " \n\t ", ReasonBadJSON},
		{"unterminated array", `[{"insertId":"a"},`, ReasonBadJSON},
		{"empty array", `[]`, ReasonBadJSON},
		{"envelope with bad base64", `{"message":{"data":"%%%"}}`, ReasonBadEnvelope},
		{"bad envelope among lines", `{"insertId":"a"}` + "\n" + `{"message":{"data":"!"}}`, ReasonBadEnvelope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ins, err := Split("f", []byte(tt.data))
			var e *Error
			if !errors.As(err, &e) || e.Reason != tt.want {
				t.Fatalf("Split = %d inputs, %v; want an *Error with reason %s", len(ins), err, tt.want)
			}
			if !errors.Is(err, events.ErrInvalid) {
				t.Errorf("errors.Is(%v, events.ErrInvalid) = false, want true", err)
			}
		})
	}
}

// fixtureStreams frames every fixture (except the one that is not JSON)
// three ways: a JSON array, JSON lines and push envelopes as JSON lines.
func fixtureStreams(t *testing.T) (entries []string, streams map[string]string) {
	t.Helper()
	var lines, envelopes []string
	for _, file := range fixtures(t) {
		if strings.HasPrefix(filepath.Base(file), "bad-json") {
			continue // not one JSON value, so it cannot be framed
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		e := strings.TrimSpace(string(b))
		var compact strings.Builder
		for _, l := range strings.Split(e, "\n") {
			compact.WriteString(strings.TrimSpace(l))
		}
		entries = append(entries, e)
		lines = append(lines, compact.String())
		envelopes = append(envelopes, push(e, `{}`))
	}
	return entries, map[string]string{
		"array":     "[" + strings.Join(entries, ",") + "]",
		"lines":     strings.Join(lines, "\n"),
		"envelopes": strings.Join(envelopes, "\n"),
	}
}

// TestSplitThenDecode checks that every fixture decodes the same after
// framing and splitting as from its own file.
func TestSplitThenDecode(t *testing.T) {
	entries, framings := fixtureStreams(t)
	for name, stream := range framings {
		ins, err := Split(name, []byte(stream))
		if err != nil {
			t.Fatalf("%s: Split: %v", name, err)
		}
		if len(ins) != len(entries) {
			t.Fatalf("%s: Split gave %d inputs, want %d", name, len(ins), len(entries))
		}
		for i, in := range ins {
			want := outcomeOf(Decode([]byte(entries[i])))
			if diff := cmp.Diff(want, outcomeOf(Decode(in.Data))); diff != "" {
				t.Errorf("%s: %s decodes differently (-file +split):\n%s", name, in.Name, diff)
			}
		}
	}
}

func TestParsePushEnvelope(t *testing.T) {
	data := `{"insertId":"a"}`
	tests := []struct {
		name string
		body string
		want PushMessage
	}{
		{"camel case", push(data, `{"k":"v"}`), PushMessage{Data: []byte(data), Attributes: map[string]string{"k": "v"},
			MessageID: "m1", PublishTime: "2024-01-01T00:00:00Z", Subscription: "projects/p/subscriptions/s"}},
		{"snake case", `{"message":{"data":"` + base64.StdEncoding.EncodeToString([]byte(data)) +
			`","message_id":"m2","publish_time":"2024-01-02T00:00:00Z"},"subscription":"s"}`,
			PushMessage{Data: []byte(data), MessageID: "m2", PublishTime: "2024-01-02T00:00:00Z", Subscription: "s"}},
		{"url-safe unpadded base64", `{"message":{"data":"` + base64.RawURLEncoding.EncodeToString([]byte("??>>")) + `"}}`,
			PushMessage{Data: []byte("??>>")}},
		{"no data", `{"message":{"attributes":{"a":"b"}}}`, PushMessage{Data: []byte{}, Attributes: map[string]string{"a": "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePushEnvelope([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParsePushEnvelope: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParsePushEnvelope mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePushEnvelopeErrors(t *testing.T) {
	for name, body := range map[string]string{
		"not JSON":           `{"message":`,
		"no message":         `{"subscription":"s"}`,
		"message not object": `{"message":"x"}`,
		"data not base64":    `{"message":{"data":"not base64!"}}`,
		"data not a string":  `{"message":{"data":12}}`,
		"empty body":         ``,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParsePushEnvelope([]byte(body))
			var e *Error
			if !errors.As(err, &e) || e.Reason != ReasonBadEnvelope || !errors.Is(err, events.ErrInvalid) {
				t.Errorf("ParsePushEnvelope(%q) error = %v, want an *Error with reason %s", body, err, ReasonBadEnvelope)
			}
		})
	}
}
