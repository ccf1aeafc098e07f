package events

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// Message attributes. A message of one event carries its id, kind, job and
// state, so that subscribers can filter and route without decoding the
// payload; a message of several events (JoinMessages) carries how many.
const (
	AttrEventID = "event_id"
	AttrKind    = "kind"
	AttrJob     = "job"
	AttrState   = "state"
	AttrEvents  = "events"
)

// MarshalMessage encodes e as the payload of a message on the events topic:
// the event's JSON, with the members `bqobserver decode` prints (there
// through encoding/json). It returns the attributes to publish beside it.
func MarshalMessage(e *Event) ([]byte, map[string]string, error) {
	b, err := EncodeMessage(e)
	if err != nil {
		return nil, nil, err
	}
	return b, MessageAttributes(e), nil
}

// EncodeMessage is the payload of MarshalMessage alone, for a message of
// several events (JoinMessages), which has attributes of its own. Every
// event appended is encoded once for the topic, so the JSON is written
// directly rather than through encoding/json's reflection: Event's members
// with its names and omission rules, the facts written by the same
// generated writer as the log's cell values. The bytes may differ from
// encoding/json's (the facts' order, strings in their shortest form) but
// hold the same members and values (TestEncodeMessageMatchesEncodingJSON).
func EncodeMessage(e *Event) ([]byte, error) {
	w := jsonWriter{b: make([]byte, 0, messageSize(e)), omitEmpty: true}
	w.b = append(w.b, '{')
	w.str("id", e.ID, true)
	w.str("kind", string(e.Kind), true)
	w.object("job", true, func() {
		w.str("project", e.Job.Project, true)
		w.str("location", e.Job.Location, true)
		w.str("job_id", e.Job.JobID, true)
	})
	w.time("time", e.Time, true)
	w.stateAndError(e)
	w.facts(&e.Facts)
	w.object("source", true, func() {
		w.str("format", e.Source.Format, true)
		w.str("method", e.Source.Method, false)
		w.str("log_name", e.Source.LogName, false)
		w.str("insert_id", e.Source.InsertID, false)
	})
	w.b = append(w.b, '}')
	if w.err != nil {
		return nil, fmt.Errorf("encoding event %s: %w", e.ID, w.err)
	}
	return w.b, nil
}

// messageSize is about the size of e's message: its strings, with room for
// the members' names and a few escapes.
func messageSize(e *Event) int {
	n := 640 + len(e.ID) + len(e.Job.Project) + len(e.Job.JobID) + len(e.Query) + len(e.Principal) +
		len(e.DestinationTable) + len(e.Source.LogName) + len(e.Source.InsertID) + len(e.Source.Method)
	for _, t := range e.ReferencedTables {
		n += len(t) + 3
	}
	for k, v := range e.Labels {
		n += len(k) + len(v) + 6
	}
	if e.Error != nil {
		n += len(e.Error.Message)
	}
	return n + n/16
}

// MessageAttributes are the attributes of a message of one event, each
// bounded as Pub/Sub requires (BoundAttribute): a job id may be 1,024
// characters long, and subscribers decode the payload anyway.
func MessageAttributes(e *Event) map[string]string {
	return map[string]string{AttrEventID: BoundAttribute(e.ID), AttrKind: string(e.Kind), AttrJob: BoundAttribute(e.Job.String()), AttrState: string(e.State)}
}

// MaxAttributeValue is the most bytes Pub/Sub takes in the value of a
// message's attribute: a publish with a longer one is refused whole.
const MaxAttributeValue = 1024

// BoundAttribute returns v as Pub/Sub takes an attribute's value: valid
// UTF-8 (a protocol buffer string), at most MaxAttributeValue bytes, cut
// on a character's boundary.
func BoundAttribute(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	if len(v) <= MaxAttributeValue {
		return v
	}
	cut := MaxAttributeValue
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return v[:cut]
}

// JoinMessages makes the payload of one message carrying several events
// from their MarshalMessage payloads: a JSON array of them. The events
// topic carries the events of one write to the log in few messages, since
// Pub/Sub's cost (and the emulator's) is per message.
func JoinMessages(payloads [][]byte) []byte {
	n := 1 + len(payloads)
	for _, p := range payloads {
		n += len(p)
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, p := range payloads {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, p...)
	}
	return append(b, ']')
}

// MessageOf is the payload and attributes of one message carrying evs,
// whose MarshalMessage payloads are payloads: the one-event form with its
// attributes for one event, else an array (JoinMessages) with AttrEvents.
func MessageOf(evs []Event, payloads [][]byte) ([]byte, map[string]string) {
	if len(evs) == 1 {
		return payloads[0], MessageAttributes(&evs[0])
	}
	return JoinMessages(payloads), map[string]string{AttrEvents: strconv.Itoa(len(evs))}
}

// UnmarshalMessage decodes a payload written by MarshalMessage: one event.
// A payload that is not a valid event is an error matching ErrInvalid.
// Every projection decodes every event, so a payload as EncodeMessage writes
// it is read in place (jsonReader); any other goes through the decoder of
// go-json-experiment/json with encoding/json's semantics (DefaultOptionsV1),
// which is the reference for both.
func UnmarshalMessage(payload []byte) (Event, error) {
	var e Event
	if r := newJSONReader(payload); !r.readMessage(&e) || !r.end() {
		e = Event{}
		if err := jsonv2.Unmarshal(payload, &e, jsonv1.DefaultOptionsV1()); err != nil {
			return Event{}, fmt.Errorf("decoding event message: %w: %w", ErrInvalid, err)
		}
	}
	if err := e.Validate(); err != nil {
		return Event{}, fmt.Errorf("decoding event message: %w: %w", ErrInvalid, err)
	}
	return e, nil
}

// UnmarshalMessages decodes the payload of any message on the events topic:
// one event (MarshalMessage) or several (JoinMessages). A payload that is
// not an event or an array of at least one, or any of whose events is not
// valid, is an error matching ErrInvalid, and returns no events. A reader
// that applies the valid events of an array and sets the others aside uses
// SplitMessages.
func UnmarshalMessages(payload []byte) ([]Event, error) {
	evs, bad, err := SplitMessages(payload)
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		errs := make([]error, len(bad))
		for i := range bad {
			errs[i] = bad[i].Err
		}
		return nil, fmt.Errorf("decoding a message of %d events: %w", len(evs)+len(bad), errors.Join(errs...))
	}
	return evs, nil
}

// An Unreadable is a member of an array of events that is not a valid
// event: its JSON, as the message carried it, and why (matching ErrInvalid).
type Unreadable struct {
	Raw []byte
	Err error
}

// SplitMessages decodes the payload of any message on the events topic,
// as UnmarshalMessages does, except that a member of an array that is not
// a valid event is returned among bad, with its JSON, instead of failing
// the others: one event a reader cannot take (written by a newer version,
// say) costs it that event and not the rest of the write. The error is for
// a payload that is neither an event nor a JSON array of at least one
// member; it matches ErrInvalid.
func SplitMessages(payload []byte) (evs []Event, bad []Unreadable, err error) {
	trimmed := bytes.TrimLeft(payload, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '[' {
		e, err := UnmarshalMessage(payload)
		if err != nil {
			return nil, nil, err
		}
		return []Event{e}, nil, nil
	}
	if evs, ok := readMessages(payload); ok && allValid(evs) {
		if len(evs) == 0 {
			return nil, nil, fmt.Errorf("decoding a message of events: %w: it holds none", ErrInvalid)
		}
		return evs, nil, nil
	}
	// The slow path: an array written by another encoder, or one with a
	// member that is not a valid event. Each member is decoded on its own.
	var members []jsontext.Value
	if err := jsonv2.Unmarshal(payload, &members, jsonv1.DefaultOptionsV1()); err != nil {
		return nil, nil, fmt.Errorf("decoding a message of events: %w: %w", ErrInvalid, err)
	}
	if len(members) == 0 {
		return nil, nil, fmt.Errorf("decoding a message of events: %w: it holds none", ErrInvalid)
	}
	evs = make([]Event, 0, len(members))
	for i, m := range members {
		e, err := UnmarshalMessage(m)
		if err != nil {
			bad = append(bad, Unreadable{Raw: m, Err: fmt.Errorf("event %d: %w", i, err)})
			continue
		}
		evs = append(evs, e)
	}
	return evs, bad, nil
}

func allValid(evs []Event) bool {
	for i := range evs {
		if evs[i].Validate() != nil {
			return false
		}
	}
	return true
}
