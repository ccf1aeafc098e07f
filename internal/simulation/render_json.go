package simulation

import (
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// jsonWriter writes compact JSON straight into a buffer, in the member
// order the caller chooses, which is how entries are rendered fast enough
// for load tests. Callers nest objects and arrays with open and close.
type jsonWriter struct {
	b []byte
	// first is, per open container, whether nothing was written in it yet.
	first    []bool
	afterKey bool
}

func (w *jsonWriter) sep() {
	if w.afterKey {
		w.afterKey = false
		return
	}
	if n := len(w.first); n > 0 {
		if !w.first[n-1] {
			w.b = append(w.b, ',')
		}
		w.first[n-1] = false
	}
}

// key starts a member; the next value written is its value.
func (w *jsonWriter) key(k string) *jsonWriter {
	w.sep()
	w.quote(k)
	w.b = append(w.b, ':')
	w.afterKey = true
	return w
}

func (w *jsonWriter) open(c byte) *jsonWriter {
	w.sep()
	w.b = append(w.b, c)
	w.first = append(w.first, true)
	return w
}

func (w *jsonWriter) obj() *jsonWriter { return w.open('{') }
func (w *jsonWriter) arr() *jsonWriter { return w.open('[') }
func (w *jsonWriter) endObj()          { w.close('}') }
func (w *jsonWriter) endArr()          { w.close(']') }

func (w *jsonWriter) close(c byte) {
	w.b = append(w.b, c)
	w.first = w.first[:len(w.first)-1]
}

// empty writes {}.
func (w *jsonWriter) empty() { w.sep(); w.b = append(w.b, '{', '}') }

func (w *jsonWriter) str(s string) { w.sep(); w.quote(s) }

// quote appends s as a JSON string in its shortest form. The simulation
// writes only valid UTF-8; a byte that is not would come out as U+FFFD, so
// the entry stays valid JSON but decodes to something other than what was
// meant, which TestEntriesDecodeAsMeant reports.
func (w *jsonWriter) quote(s string) { w.b, _ = jsontext.AppendQuote(w.b, s) }

// num writes a JSON number.
func (w *jsonWriter) num(v int64) { w.sep(); w.b = strconv.AppendInt(w.b, v, 10) }

// int64s writes an int64 as Cloud Logging does: a JSON string.
func (w *jsonWriter) int64s(v int64) {
	w.sep()
	w.b = append(w.b, '"')
	w.b = strconv.AppendInt(w.b, v, 10)
	w.b = append(w.b, '"')
}

func (w *jsonWriter) boolean(v bool) { w.sep(); w.b = strconv.AppendBool(w.b, v) }

// time writes t in layout, as a JSON string.
func (w *jsonWriter) time(t time.Time, layout string) {
	w.sep()
	w.b = append(w.b, '"')
	w.b = t.UTC().AppendFormat(w.b, layout)
	w.b = append(w.b, '"')
}

// Layouts of the times entries carry: job times with milliseconds, the
// entry's timestamp with as many digits as it needs, the receive time
// with nanoseconds.
const (
	layoutJob     = "2006-01-02T15:04:05.000Z07:00"
	layoutLog     = time.RFC3339Nano
	layoutReceive = "2006-01-02T15:04:05.000000000Z07:00"
)
