package events

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// encodeEvent returns the cell value of e: the JSON of its storedEvent.
// Appending is the log's hot path, so the JSON is written directly instead
// of through reflection, field by field in storedEvent's order and with its
// names and omission rules (the facts' part is generated with storedFacts);
// TestEncodeMatchesReflection keeps the two the same. Strings take their
// shortest form, so <, >, &, U+2028 and U+2029, which encoding/json
// escapes, are written as they are; both forms decode alike. Map keys are sorted, so an event always encodes to the same bytes.
func encodeEvent(e *Event) ([]byte, error) {
	// The JSON is written into a reused buffer and copied out at its size:
	// an event's size is hard to tell ahead (names, tables, labels), and
	// growing a buffer as it is written allocated more than the value.
	scratch := encodeBuffers.Get().(*[]byte)
	defer func() {
		if cap(*scratch) <= maxPooledEncode {
			encodeBuffers.Put(scratch)
		}
	}()
	w := jsonWriter{b: (*scratch)[:0]}
	defer func() { *scratch = w.b[:0] }()
	w.b = append(w.b, '{')
	w.int("v", storageVersion)
	w.str("id", e.ID, true)
	w.str("kind", string(e.Kind), true)
	w.str("project", e.Job.Project, true)
	w.str("location", e.Job.Location, true)
	w.str("job_id", e.Job.JobID, true)
	w.time("time", e.Time, true)
	w.stateAndError(e)
	w.object("facts", false, func() { w.facts(&e.Facts) })
	w.object("source", false, func() { w.source(&e.Source) })
	w.b = append(w.b, '}')
	if w.err != nil {
		return nil, fmt.Errorf("encoding event %s: %w", e.ID, w.err)
	}
	return bytes.Clone(w.b), nil
}

// encodeBuffers holds encodeEvent's buffers; one larger than
// maxPooledEncode (an event with a very long query) is not kept.
var encodeBuffers = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledEncode = 64 << 10

// stateAndError writes e's state and error, as the log's cell values and
// the events topic's messages both hold them.
func (w *jsonWriter) stateAndError(e *Event) {
	w.str("state", string(e.State), false)
	if e.Error != nil {
		w.object("error", true, func() {
			w.str("code", e.Error.Code, false)
			w.str("message", e.Error.Message, false)
		})
	}
}

func (w *jsonWriter) source(s *Source) {
	w.str("format", s.Format, false)
	w.str("method", s.Method, false)
	w.str("log_name", s.LogName, false)
	w.str("insert_id", s.InsertID, false)
}

// jsonWriter appends the members of JSON objects to b.
type jsonWriter struct {
	b   []byte
	err error
	// omitEmpty leaves out empty slices and maps as well as nil ones, as
	// encoding/json's omitempty does (messages); the log keeps them.
	omitEmpty bool
}

// key starts a member, after a comma unless it is the object's first.
func (w *jsonWriter) key(k string) {
	if w.b[len(w.b)-1] != '{' {
		w.b = append(w.b, ',')
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

// object writes the member k holding what fn writes; an object fn leaves
// empty is omitted unless keepEmpty.
func (w *jsonWriter) object(k string, keepEmpty bool, fn func()) {
	start := len(w.b)
	w.key(k)
	w.b = append(w.b, '{')
	inner := len(w.b)
	fn()
	if len(w.b) == inner && !keepEmpty {
		w.b = w.b[:start]
		return
	}
	w.b = append(w.b, '}')
}

func (w *jsonWriter) str(k, v string, always bool) {
	if v != "" || always {
		w.key(k)
		w.quote(v)
	}
}

func (w *jsonWriter) boolean(k string, v bool) {
	if v {
		w.key(k)
		w.b = append(w.b, "true"...)
	}
}

func (w *jsonWriter) boolPtr(k string, v *bool) {
	if v != nil {
		w.key(k)
		w.b = strconv.AppendBool(w.b, *v)
	}
}

func (w *jsonWriter) int(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *jsonWriter) intPtr(k string, v *int64) {
	if v != nil {
		w.int(k, *v)
	}
}

func (w *jsonWriter) time(k string, t time.Time, always bool) {
	if t.IsZero() && !always {
		return
	}
	w.key(k)
	w.b = append(w.b, '"')
	var err error
	if w.b, err = t.AppendText(w.b); err != nil && w.err == nil {
		w.err = fmt.Errorf("%s: %w", k, err)
	}
	w.b = append(w.b, '"')
}

// strs writes a slice; nil is omitted and empty kept, as omitzero does.
func (w *jsonWriter) strs(k string, v []string) {
	if v == nil || w.omitEmpty && len(v) == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, '[')
	for i, s := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.quote(s)
	}
	w.b = append(w.b, ']')
}

// strMap writes a map with sorted keys; nil is omitted and empty kept.
func (w *jsonWriter) strMap(k string, m map[string]string) {
	if m == nil || w.omitEmpty && len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	w.key(k)
	w.b = append(w.b, '{')
	for i, key := range keys {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.quote(key)
		w.b = append(w.b, ':')
		w.quote(m[key])
	}
	w.b = append(w.b, '}')
}

// quote appends s as a JSON string in its shortest form. An event is
// stored even if a string of it is not valid UTF-8: each invalid byte is
// stored as U+FFFD, as encoding/json stores it, which is all the error
// AppendQuote then returns reports.
func (w *jsonWriter) quote(s string) {
	w.b, _ = jsontext.AppendQuote(w.b, s)
}
