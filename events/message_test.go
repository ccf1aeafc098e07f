package events

import (
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
