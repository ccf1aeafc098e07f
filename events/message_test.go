package events

import (
	"encoding/json"
	"errors"
	"testing"

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
