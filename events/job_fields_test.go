package events

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events/jobfields"
)

// goTypes are the Go types of the field table's kinds.
var goTypes = map[jobfields.Kind]reflect.Type{
	jobfields.String:        reflect.TypeFor[string](),
	jobfields.Flag:          reflect.TypeFor[bool](),
	jobfields.Strings:       reflect.TypeFor[[]string](),
	jobfields.StringMap:     reflect.TypeFor[map[string]string](),
	jobfields.Time:          reflect.TypeFor[time.Time](),
	jobfields.OptionalInt64: reflect.TypeFor[*int64](),
	jobfields.OptionalBool:  reflect.TypeFor[*bool](),
	jobfields.State:         reflect.TypeFor[State](),
	jobfields.Error:         reflect.TypeFor[*JobError](),
}

// member is a field of a Go struct as JSON sees it.
type member struct {
	Type reflect.Type
	JSON string
}

// members returns the exported fields of t by Go name, entering embedded
// structs, with their JSON names.
func members(t reflect.Type) map[string]member {
	out := map[string]member{}
	for f := range t.Fields() {
		switch {
		case !f.IsExported():
		case f.Anonymous:
			for k, v := range members(f.Type) {
				out[k] = v
			}
		default:
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			out[f.Name] = member{f.Type, name}
		}
	}
	return out
}

// TestTableDescribesTheTypes holds the hand-written types that carry a job's
// fields (JobKey, Event, storedEvent) to the field table the rest is
// generated from, and Job to the table: the same fields, types and JSON names.
func TestTableDescribesTheTypes(t *testing.T) {
	want := map[string]map[string]member{"JobKey": {}, "Event": {}, "Job": {"Key": {reflect.TypeFor[JobKey](), "key"}}}
	stored := map[string]bool{}
	for _, f := range jobfields.Fields {
		m := member{goTypes[f.Kind], f.JSON}
		switch f.Scope {
		case jobfields.Key:
			want["JobKey"][f.Name] = m
			stored[f.JSON] = true
		case jobfields.Event:
			want["Event"][f.Name] = m
			want["Job"][f.Name] = m
			stored[f.JSON] = true
		case jobfields.Fact:
			want["Event"][f.Name] = m
			want["Job"][f.Name] = m
		case jobfields.Derived:
			want["Job"][f.Name] = m
		}
	}
	got := map[string]map[string]member{
		"JobKey": members(reflect.TypeFor[JobKey]()),
		"Event":  members(reflect.TypeFor[Event]()),
		"Job":    members(reflect.TypeFor[Job]()),
	}
	// The event's own fields, which are not the job's.
	for _, name := range []string{"ID", "Kind", "Job", "Time", "Source"} {
		delete(got["Event"], name)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b reflect.Type) bool { return a == b })); diff != "" {
		t.Errorf("the types and the field table differ (-table +types):\n%s", diff)
	}
	for _, m := range members(reflect.TypeFor[storedEvent]()) {
		delete(stored, m.JSON)
	}
	if len(stored) > 0 {
		t.Errorf("storedEvent has no member for %v", stored)
	}
}

// TestAnyEventKindsAreKinds checks that the kinds the table's flags wait
// for are kinds of event.
func TestAnyEventKindsAreKinds(t *testing.T) {
	kinds := []Kind{KindInserted, KindStateChanged, KindCompleted, KindProgress, KindReconciled, KindCancelRequested}
	for _, f := range jobfields.Fields {
		if f.Fold == jobfields.AnyEvent && !slices.Contains(kinds, Kind(f.EventKind)) {
			t.Errorf("%s waits for events of kind %q, which is no Kind", f.Name, f.EventKind)
		}
	}
}
