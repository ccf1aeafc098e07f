// Package jobfields describes, once, the fields of a BigQuery job's record:
// for each, its Go name and kind, the JSON name that the event log's stored
// form, the events topic and the API all use, a sentence of documentation,
// how the fold keeps it, and its column in the BigQuery job history (named
// and typed after INFORMATION_SCHEMA.JOBS wherever the two overlap).
//
// It is data and imports nothing of the product. The generator in
// events/internal/genjob derives from it the job's Go types (events.Facts,
// events.Job), the fold's registers, the event log's stored form with its
// encoder, the API's form with its encoder and equality check, and the
// OpenAPI schema of a job; `go generate ./...` rewrites them and a test fails
// while any is stale. Adding a field is a row in Fields, the decoders that
// fill it, and their tests.
package jobfields

// Kind is the type of a field's value, and with it what "not known" is.
type Kind int

// The kinds of field. A fact's zero value means "not known", so Flag is for
// facts that are only ever reported true; a fact that can be known false is
// an OptionalBool.
const (
	String        Kind = iota + 1 // string; "" is not known
	Flag                          // bool; false is not known
	Strings                       // []string; empty is not known
	StringMap                     // map[string]string; empty is not known
	Time                          // time.Time; the zero time is not known
	OptionalInt64                 // *int64; nil is not known
	OptionalBool                  // *bool; nil is not known
	State                         // events.State: PENDING, RUNNING or DONE; "" is not known
	Error                         // *events.JobError: a code and a message; nil is not known
)

// Scope says where a field lives: on every event, among the facts an event
// may carry, or only in the fold of a job's events.
type Scope int

// The scopes, in the order a job's record lists its fields.
const (
	// Key fields identify the job (events.JobKey): every event carries them.
	Key Scope = iota + 1
	// Event fields are carried by an event beside its facts (events.Event).
	Event
	// Fact fields are what an event may know about its job (events.Facts).
	Fact
	// Derived fields are computed by the fold from the events themselves
	// (events.Job only).
	Derived
)

// Fold is how the fold of a job's events keeps a field. Whatever the rule,
// the fold does not depend on the order of the events or on duplicates.
type Fold int

// The fold rules.
const (
	// Identity: the same on every event of the job.
	Identity Fold = iota + 1
	// Register is a last-writer-wins register. Its value comes from the
	// event with the greatest stamp among those that know it: first the
	// rank of the state the event reports (so DONE outranks RUNNING, and a
	// late entry never resurrects a finished job), then the event time to
	// the nanosecond, then the event id, so distinct events never tie. An
	// unknown value never writes. Equal stamps come from one event (or from
	// events sharing an id): the greater value is kept, so even those fold
	// alike in any order (strings, lists and maps in lexicographic order,
	// later times, greater numbers, true over false, errors by code then
	// message).
	Register
	// CompleteText is a Register of a text that an event may carry cut
	// short: a complete text beats a truncated one whatever their stamps
	// (v1 entries carry the whole query where v2 cuts it at 50K), then the
	// stamp decides. The TruncatedFlag field that follows it in Fields is
	// written with it.
	CompleteText
	// TruncatedFlag says the CompleteText before it was cut short; the two
	// are one register.
	TruncatedFlag
	// EarliestEvent is the time of the job's earliest event.
	EarliestEvent
	// LatestEvent is the time of the job's latest event.
	LatestEvent
	// AnyEvent is set once any event of the kind EventKind is folded,
	// except one that records a request that failed (a request to cancel
	// that BigQuery refused or did not answer).
	AnyEvent
)

// Field is one field of a job's record.
type Field struct {
	// Name is the Go name of the field in events.Job (and in events.Facts,
	// events.Event or events.JobKey, by Scope).
	Name string
	// JSON is the member name of the field in every JSON form: the stored
	// event, the events topic and the API.
	JSON  string
	Kind  Kind
	Scope Scope
	// Doc is one sentence saying what the field holds.
	Doc  string
	Fold Fold
	// Group names the struct embedded in events.Facts that holds a fact
	// (Progress); a group's fields follow each other in Fields.
	Group string
	// Enum lists the values a String or State field can take, where they
	// are a closed set.
	Enum []string
	// EventKind is the kind of event that sets an AnyEvent field.
	EventKind string
	// Column is the field's column in the BigQuery job history.
	Column Column
}

// Group is a struct of facts embedded in events.Facts.
type Group struct {
	Name string
	// Doc is the type's comment.
	Doc string
}

// Groups are the structs embedded in events.Facts.
var Groups = []Group{
	{Name: "Progress", Doc: "Progress is what a running job reports about its work so far."},
}
