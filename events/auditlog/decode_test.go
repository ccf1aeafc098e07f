package auditlog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/golden"
)

// result is what Decode made of one entry, in the shape of a golden file.
type result struct {
	Events  []events.Event   `json:"events,omitempty"`
	Dropped []events.Dropped `json:"dropped,omitempty"`
	Skip    *skipResult      `json:"skip,omitempty"`
	Error   *errorResult     `json:"error,omitempty"`
}

// goldenNow is the time at which the golden files are decoded.
var goldenNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type skipResult struct {
	Reason SkipReason `json:"reason"`
	Detail string     `json:"detail"`
}

type errorResult struct {
	Reason  ErrorReason `json:"reason"`
	Message string      `json:"message"`
}

// resultOf classifies Decode's output. It fails the test on an error that
// is neither a SkipError nor an Error, or on a result that is both or none.
func resultOf(t *testing.T, evs []events.Event, err error) result {
	t.Helper()
	var skipErr *SkipError
	var decErr *Error
	switch {
	case err == nil && len(evs) == 0:
		t.Fatalf("Decode returned no events and no error")
	case err == nil:
		return result{Events: evs}
	case len(evs) > 0:
		t.Fatalf("Decode returned %d events and an error: %v", len(evs), err)
	case errors.As(err, &skipErr):
		return result{Skip: &skipResult{Reason: skipErr.Reason, Detail: skipErr.Detail}}
	case errors.As(err, &decErr):
		return result{Error: &errorResult{Reason: decErr.Reason, Message: decErr.Error()}}
	}
	t.Fatalf("Decode returned an untyped error %T: %v", err, err)
	return result{}
}

// fixtures lists the package's own entries in testdata, without goldens.
func fixtures(t testing.TB) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range all {
		if !strings.HasSuffix(f, ".golden.json") {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		t.Fatal("no fixtures in testdata")
	}
	return files
}

func TestDecodeGolden(t *testing.T) {
	for _, file := range fixtures(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			entry, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			evs, dropped, err := DecodeAt(entry, goldenNow)
			got := resultOf(t, evs, err)
			got.Dropped = dropped
			golden.JSON(t, strings.TrimSuffix(file, ".json")+".golden.json", got)
		})
	}
}

// TestDecodeDeterministic checks the property the event log relies on for
// idempotent appends: the same bytes always give the same events and IDs,
// and distinct entries give distinct IDs.
func TestDecodeDeterministic(t *testing.T) {
	seen := map[string]string{}
	for _, file := range fixtures(t) {
		entry, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		first, err1 := Decode(entry)
		again, err2 := Decode(entry)
		if diff := cmp.Diff(first, again); diff != "" || (err1 == nil) != (err2 == nil) {
			t.Errorf("%s: second Decode differs (-first +second):\n%s", file, diff)
		}
		for _, ev := range first {
			if other, dup := seen[ev.ID]; dup {
				t.Errorf("%s and %s both yield event id %s", other, file, ev.ID)
			}
			seen[ev.ID] = file
		}
	}
}
