package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestMessageRoundTrip(t *testing.T) {
	e := Event{ID: AuditEventID("log", "a", 0), Kind: KindCompleted, Job: key, Time: at(3), State: StateDone,
		Error: &JobError{Code: "3", Message: "Syntax error"},
		Facts: Facts{Principal: "ann@example.com", Labels: map[string]string{"team": "a"}, SlotMs: Int64(5), CacheHit: Bool(false),
			Progress: Progress{CompletedUnits: Int64(2)}},
		Source: Source{Format: "v2", Method: "InsertJob:jobChange", LogName: "projects/p/logs/x", InsertID: "a"}}
	payload, attrs, err := MarshalMessage(&e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalMessage(payload)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e, got); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
	wantAttrs := map[string]string{AttrEventID: e.ID, AttrKind: "completed", AttrJob: "p:US.job_1", AttrState: "DONE"}
	if diff := cmp.Diff(wantAttrs, attrs); diff != "" {
		t.Errorf("attributes mismatch (-want +got):\n%s", diff)
	}
}

func TestUnmarshalMessageInvalid(t *testing.T) {
	for name, payload := range map[string]string{
		"not json":   `{`,
		"no id":      `{"kind":"inserted","job":{"project":"p","location":"US","job_id":"j"},"time":"2026-01-01T00:00:00Z"}`,
		"no job":     `{"id":"x","kind":"inserted","time":"2026-01-01T00:00:00Z"}`,
		"wrong type": `{"id":1}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := UnmarshalMessage([]byte(payload)); !errors.Is(err, ErrInvalid) {
				t.Errorf("UnmarshalMessage(%s) error = %v, want ErrInvalid", payload, err)
			}
		})
	}
}

// TestUnmarshalMessageMatchesEncodingJSON holds the fast decoder to
// encoding/json's reading of the same payloads, odd ones included.
func TestUnmarshalMessageMatchesEncodingJSON(t *testing.T) {
	const job = `"job":{"project":"p","location":"US","job_id":"j"},"time":"2026-01-01T00:00:00.123456789Z"`
	for name, payload := range map[string]string{
		"every kind of fact": `{"id":"x","kind":"completed",` + job + `,"state":"DONE","error":{"code":"3","message":"bad"},` +
			`"principal":"a@b","labels":{"k":"v"},"referenced_tables":["t1","t2"],"slot_ms":5,"cache_hit":false,` +
			`"completed_units":2,"create_time":"2026-01-01T00:00:00Z","source":{"format":"v2","insert_id":"i"}}`,
		"keys in another case": `{"ID":"x","Kind":"inserted",` + job + `,"STATE":"RUNNING","Principal":"a@b"}`,
		"nulls":                `{"id":"x","kind":"inserted",` + job + `,"error":null,"labels":null,"slot_ms":null,"source":null}`,
		"unknown fields":       `{"id":"x","kind":"inserted",` + job + `,"colour":"red","nested":{"a":[1,2]}}`,
		"duplicate keys":       `{"id":"x","id":"y","kind":"inserted",` + job + `}`,
		"escaped strings":      `{"id":"x\u00e9\n","kind":"inserted",` + job + `,"query":"SELECT '\u003c\u2028'"}`,
	} {
		t.Run(name, func(t *testing.T) {
			var want Event
			if err := json.Unmarshal([]byte(payload), &want); err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
			got, err := UnmarshalMessage([]byte(payload))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("UnmarshalMessage differs from encoding/json (-got +want):\n%s", diff)
			}
		})
	}
}

// TestEncodeMessageMatchesEncodingJSON holds the hand-written message
// encoder to encoding/json's Marshal of the event: the same members with
// the same values (in any order, strings in any form), and the same event
// read back.
func TestEncodeMessageMatchesEncodingJSON(t *testing.T) {
	cases := encodeCases()
	cases["no source format, empty slices and maps"] = Event{ID: "x", Kind: KindInserted, Job: JobKey{"p", "US", "j"}, Time: time.Unix(5, 6),
		State: StateRunning, Facts: Facts{Labels: map[string]string{}, ReferencedTables: []string{}, Query: "SELECT 1"}}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) { compareMessages(t, &e) })
	}
}

func compareMessages(t *testing.T, e *Event) {
	t.Helper()
	got, err := EncodeMessage(e)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var gotJSON, wantJSON any
	if err := json.Unmarshal(got, &gotJSON); err != nil {
		t.Fatalf("EncodeMessage wrote invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &wantJSON); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantJSON, gotJSON); diff != "" {
		t.Errorf("EncodeMessage differs from encoding/json (-json +EncodeMessage):\n%s", diff)
	}
	if e.Validate() != nil {
		return // not an event UnmarshalMessage accepts
	}
	gotEvent, err := UnmarshalMessage(got)
	if err != nil {
		t.Fatal(err)
	}
	wantEvent, err := UnmarshalMessage(want)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantEvent, gotEvent); diff != "" {
		t.Errorf("the event read back differs (-encoding/json +EncodeMessage):\n%s", diff)
	}
}

func FuzzEncodeMessage(f *testing.F) {
	f.Add("SELECT 1", "team", "a", int64(5), false)
	f.Add("\x00\"\\\xff\u2028<&>", "\xc3", "", int64(-1), true)
	f.Fuzz(func(t *testing.T, query, label, value string, n int64, empty bool) {
		e := Event{ID: label, Kind: KindInserted, Job: JobKey{"p", "US", value}, Time: time.Unix(0, n), State: State(value),
			Facts:  Facts{Query: query, Labels: map[string]string{label: value}, ReferencedTables: []string{query, value}, SlotMs: &n},
			Source: Source{Format: value, InsertID: label}}
		if empty {
			e.Labels, e.ReferencedTables, e.Error = map[string]string{}, []string{}, &JobError{Message: query}
		}
		compareMessages(t, &e)
	})
}

// TestMessageAttributesBounded: a message's attributes are what Pub/Sub
// takes, which refuses a publish with a value over 1,024 bytes or not
// UTF-8, however long the job's id (BigQuery allows 1,024 characters).
func TestMessageAttributesBounded(t *testing.T) {
	e := Event{ID: "e1", Kind: KindInserted, State: StateRunning,
		Job: JobKey{Project: "my-project", Location: "US", JobID: strings.Repeat("é", 600)}}
	for k, v := range MessageAttributes(&e) {
		if len(v) > MaxAttributeValue || !utf8.ValidString(v) {
			t.Errorf("attribute %s is %d bytes (valid UTF-8: %v), more than Pub/Sub takes", k, len(v), utf8.ValidString(v))
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"short", "short"},
		{strings.Repeat("a", 1500), strings.Repeat("a", 1024)},
		{strings.Repeat("a", 1023) + "é", strings.Repeat("a", 1023)}, // not cut through the character
		{"bad \xff byte", "bad \uFFFD byte"},
	} {
		if got := BoundAttribute(tc.in); got != tc.want {
			t.Errorf("BoundAttribute(%.20q…) = %.20q… (%d bytes), want %.20q… (%d bytes)", tc.in, got, len(got), tc.want, len(tc.want))
		}
	}
}
