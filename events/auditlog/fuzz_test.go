package auditlog

import (
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
)

// FuzzDecode checks that Decode never panics and that every result is one
// of the three promised: events fit for the log, a *SkipError, or an *Error
// that wraps events.ErrInvalid. It also checks that decoding is
// deterministic. Seeds: every testdata fixture, plus inline edge cases.
func FuzzDecode(f *testing.F) {
	for _, file := range fixtures(f) {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `"x"`, `{"protoPayload":null}`, `{"protoPayload":{}}`,
		`{"serviceData":{}}`, `{"metadata":{}}`, `{"metadata":{"jobChange":{}}}`,
		`{"metadata":{"jobInsertion":{"job":{"jobName":"projects/p/jobs/j"}}},"timestamp":"2024-01-01T00:00:00Z"}`,
		`{"protoPayload":{"methodName":"google.cloud.bigquery.v2.JobService.CancelJob","resourceName":"projects/p/locations/l/jobs/j"},"timestamp":"2024-01-01T00:00:00Z"}`,
		`{"serviceData":{"jobCompletedEvent":{"job":{"jobName":{"projectId":"p","jobId":"j","location":"l"},"jobStatistics":{"endTime":"2024-01-01 00:00:00"}}}}}`,
		`{"protoPayload":{"status":{"code":"x"},"metadata":{"jobChange":{"job":{"jobName":"projects/p/jobs/j"}}}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, entry []byte) {
		evs, err := Decode(entry)
		checkResult(t, evs, err)
		again, err2 := Decode(entry)
		if diff := cmp.Diff(evs, again); diff != "" || errString(err) != errString(err2) {
			t.Fatalf("Decode is not deterministic: %v then %v (-first +second):\n%s", err, err2, diff)
		}
	})
}

func checkResult(t *testing.T, evs []events.Event, err error) {
	t.Helper()
	var skipErr *SkipError
	var decErr *Error
	switch {
	case err == nil && len(evs) == 0:
		t.Fatal("no events and no error")
	case err == nil:
		for i := range evs {
			if verr := evs[i].Validate(); verr != nil {
				t.Fatalf("event %d does not validate: %v", i, verr)
			}
		}
	case len(evs) > 0:
		t.Fatalf("%d events and an error: %v", len(evs), err)
	case errors.As(err, &skipErr):
		if !errors.Is(err, ErrSkip) || errors.Is(err, events.ErrInvalid) || skipErr.Reason == "" {
			t.Fatalf("skip %v is not a well-formed SkipError", err)
		}
	case errors.As(err, &decErr):
		if !errors.Is(err, events.ErrInvalid) || errors.Is(err, ErrSkip) || decErr.Reason == "" {
			t.Fatalf("error %v is not a well-formed Error", err)
		}
	default:
		t.Fatalf("untyped error %T: %v", err, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// FuzzSplit checks that Split never panics, returns inputs or an *Error,
// and that every input it returns can be decoded without panicking.
func FuzzSplit(f *testing.F) {
	f.Add([]byte(`[{"insertId":"a"},{"insertId":"b"}]`))
	f.Add([]byte("{\"a\":1}\n{\"b\":2}\n"))
	f.Add([]byte(push(`{"insertId":"a"}`, `{"k":"v"}`)))
	f.Add([]byte("{\"a\":1}\n{bad\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ins, err := Split("f", data)
		var e *Error
		if err != nil && (!errors.As(err, &e) || !errors.Is(err, events.ErrInvalid)) {
			t.Fatalf("Split error %T is not an *Error: %v", err, err)
		}
		if err == nil && len(ins) == 0 {
			t.Fatal("Split returned no inputs and no error")
		}
		for _, in := range ins {
			evs, derr := Decode(in.Data)
			checkResult(t, evs, derr)
		}
	})
}
