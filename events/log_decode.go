package events

import (
	"bytes"
	"encoding/binary"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/go-json-experiment/json/jsontext"
)

// jsonReader reads an event's JSON as this package writes it (encodeEvent,
// EncodeMessage) without reflection: a rebuild decodes every event of every
// running job, and the projection every message of the events topic, and
// json's reflection costs about twice what reading the known members in
// place does (BenchmarkDecodeEvent).
//
// It reads only what it can read exactly as the json package would: names
// in the case they are written, each member once, strings that are valid
// UTF-8, integers in their plain form, times in RFC 3339 in UTC, no nulls.
// Anything else (an older writer's liberties, a name in another case, a
// member it does not know, malformed JSON) makes it give up (ok false), and
// the caller decodes the value through the json package, which is the
// reference for every value and every error. FuzzDecodeEvent and
// FuzzUnmarshalMessages hold the two to the same result whenever the reader
// does not give up.
type jsonReader struct {
	b  []byte
	i  int
	ok bool // false once the reader gave up
}

// newJSONReader returns a reader of b.
func newJSONReader(b []byte) *jsonReader { return &jsonReader{b: b, ok: true} }

// fail gives up and returns false, for its callers to return.
func (r *jsonReader) fail() bool {
	r.ok = false
	return false
}

func (r *jsonReader) space() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// consume reads c, after any white space.
func (r *jsonReader) consume(c byte) bool {
	r.space()
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return r.fail()
}

// peek returns the next byte after any white space, or 0 at the end.
func (r *jsonReader) peek() byte {
	r.space()
	if r.i < len(r.b) {
		return r.b[r.i]
	}
	return 0
}

// end reports whether nothing but white space is left.
func (r *jsonReader) end() bool {
	r.space()
	return r.ok && r.i == len(r.b)
}

// members reads an object, calling member with each member's name (which
// may alias the input), unescaped, with the reader at the value; member
// reads the value.
func (r *jsonReader) members(member func(name []byte) bool) bool {
	if !r.consume('{') {
		return false
	}
	if r.peek() == '}' {
		r.i++
		return true
	}
	for {
		name, escaped, ok := r.rawString()
		if ok && escaped {
			name, ok = r.unquote(nil, name)
		}
		if !ok || !r.consume(':') || !member(name) {
			return r.fail()
		}
		switch r.peek() {
		case ',':
			r.i++
		case '}':
			r.i++
			return true
		default:
			return r.fail()
		}
	}
}

// once records that the member numbered n of an object (below 64) was read,
// and reports false when it was read before: which of two values counts is
// the json package's to say.
func (r *jsonReader) once(seen *uint64, n int) bool {
	if *seen&(1<<n) != 0 {
		return r.fail()
	}
	*seen |= 1 << n
	return true
}

// rawString reads a string and returns its bytes between the quotes, and
// whether they hold an escape. It gives up on a string without escapes
// that is not valid UTF-8 or holds a control byte; one with escapes is
// checked as it is unquoted (unquote).
func (r *jsonReader) rawString() (s []byte, escaped, ok bool) {
	if !r.consume('"') {
		return nil, false, false
	}
	start := r.i
	for {
		q := bytes.IndexByte(r.b[r.i:], '"')
		if q < 0 {
			return nil, false, r.fail()
		}
		end := r.i + q
		r.i = end + 1
		k := end
		for k > start && r.b[k-1] == '\\' {
			k--
		}
		if (end-k)%2 == 0 { // not an escaped quote
			s = r.b[start:end]
			break
		}
		escaped = true
	}
	if !escaped && bytes.IndexByte(s, '\\') >= 0 {
		escaped = true
	}
	if !escaped && !plainText(s) {
		return nil, false, r.fail()
	}
	return s, escaped, true
}

// plainText reports whether s, a JSON string without escapes, holds no
// control byte and is valid UTF-8. Eight bytes at a time, while they are
// all ASCII above the control bytes, as most of a query is.
func plainText(s []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		if (x|(x-0x20*ones))&highs != 0 { // a byte of 0x80 or more, or below 0x20
			break
		}
	}
	var high byte
	for _, c := range s[i:] {
		if c < 0x20 {
			return false
		}
		high |= c
	}
	return high < utf8.RuneSelf || utf8.Valid(s[i:])
}

// text reads a string value.
func (r *jsonReader) text() (string, bool) {
	s, escaped, ok := r.rawString()
	if !ok {
		return "", false
	}
	if !escaped {
		return string(s), true
	}
	// AppendUnquote grows dst to the length of the quoted string first, so
	// dst holds that much; out is new and never written again, so the
	// string may be its bytes rather than one more copy of them.
	out, ok := r.unquote(make([]byte, 0, len(s)+2), s)
	if !ok || len(out) == 0 {
		return "", ok
	}
	return unsafe.String(&out[0], len(out)), true
}

// unquote appends to dst the string s, just read by rawString, with its
// escapes replaced.
func (r *jsonReader) unquote(dst, s []byte) ([]byte, bool) {
	quoted := r.b[r.i-len(s)-2 : r.i] // s with its quotes
	out, err := jsontext.AppendUnquote(dst, quoted)
	if err != nil {
		return dst, r.fail()
	}
	return out, true
}

func (r *jsonReader) str(v *string) bool {
	s, ok := r.text()
	*v = s
	return ok
}

// word reads a string that is one of a few common values, returning the
// constant rather than a copy.
func (r *jsonReader) word(v *string, common ...string) bool {
	start := r.i
	s, escaped, ok := r.rawString()
	if !ok {
		return false
	}
	if !escaped {
		for _, c := range common {
			if string(s) == c {
				*v = c
				return true
			}
		}
	}
	r.i = start
	return r.str(v)
}

func (r *jsonReader) boolean(v *bool) bool {
	r.space()
	switch rest := r.b[r.i:]; {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		*v, r.i = true, r.i+4
	case len(rest) >= 5 && string(rest[:5]) == "false":
		*v, r.i = false, r.i+5
	default:
		return r.fail()
	}
	return r.delimited()
}

// delimited reports whether a literal or number just read ends where a
// value may end.
func (r *jsonReader) delimited() bool {
	if r.i == len(r.b) {
		return true
	}
	switch r.b[r.i] {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return r.fail()
}

func (r *jsonReader) boolPtr(v **bool) bool {
	var b bool
	if !r.boolean(&b) {
		return false
	}
	*v = &b
	return true
}

// int reads an integer in its plain form: an optional minus and digits
// without a leading zero, within int64.
func (r *jsonReader) int(v *int64) bool {
	r.space()
	neg := r.i < len(r.b) && r.b[r.i] == '-'
	if neg {
		r.i++
	}
	start := r.i
	var n uint64
	for r.i < len(r.b) && '0' <= r.b[r.i] && r.b[r.i] <= '9' {
		d := uint64(r.b[r.i] - '0')
		if n > (1<<64-1-d)/10 {
			return r.fail()
		}
		n = n*10 + d
		r.i++
	}
	digits := r.i - start
	if digits == 0 || digits > 1 && r.b[start] == '0' || !r.delimited() {
		return r.fail()
	}
	switch {
	case !neg && n <= 1<<63-1:
		*v = int64(n)
	case neg && n < 1<<63:
		*v = -int64(n)
	case neg && n == 1<<63:
		*v = -1 << 63
	default:
		return r.fail()
	}
	return true
}

func (r *jsonReader) intPtr(v **int64) bool {
	var n int64
	if !r.int(&n) {
		return false
	}
	*v = &n
	return true
}

// strs reads an array of strings; [] is an empty slice, not nil.
func (r *jsonReader) strs(v *[]string) bool {
	if !r.consume('[') {
		return false
	}
	out := []string{}
	if r.peek() == ']' {
		r.i++
		*v = out
		return true
	}
	for {
		s, ok := r.text()
		if !ok {
			return false
		}
		out = append(out, s)
		switch r.peek() {
		case ',':
			r.i++
		case ']':
			r.i++
			*v = out
			return true
		default:
			return r.fail()
		}
	}
}

// strMap reads an object of strings; {} is an empty map, not nil.
func (r *jsonReader) strMap(v *map[string]string) bool {
	m := map[string]string{}
	ok := r.members(func(name []byte) bool {
		if _, dup := m[string(name)]; dup {
			return false
		}
		s, ok := r.text()
		m[string(name)] = s
		return ok
	})
	*v = m
	return ok
}

// time reads a time as encodeEvent writes it: RFC 3339 in UTC, with up to
// nine digits of fraction.
func (r *jsonReader) time(v *time.Time) bool {
	s, escaped, ok := r.rawString()
	if !ok || escaped || len(s) < len("2006-01-02T15:04:05Z") || s[len(s)-1] != 'Z' {
		return r.fail()
	}
	num := func(p []byte, from, n int) (int, bool) {
		x := 0
		for i := from; i < from+n; i++ {
			c := p[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			x = x*10 + int(c-'0')
		}
		return x, true
	}
	p := s
	year, ok1 := num(p, 0, 4)
	month, ok2 := num(p, 5, 2)
	day, ok3 := num(p, 8, 2)
	hour, ok4 := num(p, 11, 2)
	minute, ok5 := num(p, 14, 2)
	sec, ok6 := num(p, 17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || p[4] != '-' || p[7] != '-' || p[10] != 'T' ||
		p[13] != ':' || p[16] != ':' || month < 1 || month > 12 || day < 1 ||
		day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || sec > 59 {
		return r.fail()
	}
	nsec := 0
	if frac := p[19 : len(p)-1]; len(frac) > 0 {
		digits := len(frac) - 1
		if frac[0] != '.' || digits < 1 || digits > 9 {
			return r.fail()
		}
		n, ok := num(frac, 1, digits)
		if !ok {
			return r.fail()
		}
		for range 9 - digits {
			n *= 10
		}
		nsec = n
	}
	*v = time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return true
}

// daysIn is the number of days of month in year.
func daysIn(month time.Month, year int) int {
	return time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// jobError reads a job's error.
func (r *jsonReader) jobError(v **JobError) bool {
	e := &JobError{}
	var seen uint64
	ok := r.members(func(name []byte) bool {
		switch string(name) {
		case "code":
			return r.once(&seen, 0) && r.str(&e.Code)
		case "message":
			return r.once(&seen, 1) && r.str(&e.Message)
		}
		return false
	})
	*v = e
	return ok
}

// source reads where an event came from.
func (r *jsonReader) source(v *Source) bool {
	var seen uint64
	return r.members(func(name []byte) bool {
		switch string(name) {
		case "format":
			return r.once(&seen, 0) && r.word(&v.Format, "v1", "v2", "api", "operator")
		case "method":
			return r.once(&seen, 1) && r.str(&v.Method)
		case "log_name":
			return r.once(&seen, 2) && r.str(&v.LogName)
		case "insert_id":
			return r.once(&seen, 3) && r.str(&v.InsertID)
		}
		return false
	})
}

// kind reads an event's kind and state reads its state.
func (r *jsonReader) kind(v *Kind) bool {
	s := string(*v)
	ok := r.word(&s, string(KindInserted), string(KindStateChanged), string(KindCompleted), string(KindProgress),
		string(KindReconciled), string(KindCancelRequested))
	*v = Kind(s)
	return ok
}

func (r *jsonReader) state(v *State) bool {
	s := string(*v)
	ok := r.word(&s, string(StatePending), string(StateRunning), string(StateDone))
	*v = State(s)
	return ok
}

// eventMember reads the member named name that both forms of an event hold
// alike (numbered 0 to 5 in seen). known is false when name is none of them.
func (r *jsonReader) eventMember(name []byte, e *Event, seen *uint64) (known, ok bool) {
	switch string(name) {
	case "id":
		return true, r.once(seen, 0) && r.str(&e.ID)
	case "kind":
		return true, r.once(seen, 1) && r.kind(&e.Kind)
	case "time":
		return true, r.once(seen, 2) && r.time(&e.Time)
	case "state":
		return true, r.once(seen, 3) && r.state(&e.State)
	case "error":
		return true, r.once(seen, 4) && r.jobError(&e.Error)
	case "source":
		return true, r.once(seen, 5) && r.source(&e.Source)
	}
	return false, false
}

// factMember reads the fact named name, once (seen numbers the facts).
func (r *jsonReader) factMember(name []byte, f *Facts, seen *uint64) bool {
	n := r.fact(name, f)
	return n >= 0 && r.ok && r.once(seen, n)
}

// readStoredEvent reads a cell value as encodeEvent writes it: the members
// of storedEvent. ok is false when the reader gave up (see jsonReader).
func readStoredEvent(b []byte) (e Event, ok bool) {
	r := newJSONReader(b)
	var seen, factsSeen uint64
	var version int64
	r.members(func(name []byte) bool {
		if known, ok := r.eventMember(name, &e, &seen); known {
			return ok
		}
		switch string(name) {
		case "v":
			return r.once(&seen, 6) && r.int(&version)
		case "project":
			return r.once(&seen, 7) && r.str(&e.Job.Project)
		case "location":
			return r.once(&seen, 8) && r.str(&e.Job.Location)
		case "job_id":
			return r.once(&seen, 9) && r.str(&e.Job.JobID)
		case "facts":
			return r.once(&seen, 10) && r.members(func(name []byte) bool { return r.factMember(name, &e.Facts, &factsSeen) })
		}
		return false
	})
	if !r.end() || version != storageVersion {
		return Event{}, false
	}
	return e, true
}

// readMessage reads one event as EncodeMessage writes it: Event's members,
// the facts among them.
func (r *jsonReader) readMessage(e *Event) bool {
	var seen, jobSeen, factsSeen uint64
	return r.members(func(name []byte) bool {
		if known, ok := r.eventMember(name, e, &seen); known {
			return ok
		}
		if string(name) != "job" {
			return r.factMember(name, &e.Facts, &factsSeen)
		}
		return r.once(&seen, 6) && r.members(func(name []byte) bool {
			switch string(name) {
			case "project":
				return r.once(&jobSeen, 0) && r.str(&e.Job.Project)
			case "location":
				return r.once(&jobSeen, 1) && r.str(&e.Job.Location)
			case "job_id":
				return r.once(&jobSeen, 2) && r.str(&e.Job.JobID)
			}
			return false
		})
	})
}

// readMessages reads a message's payload as EncodeMessage or JoinMessages
// writes it: one event, or an array of at least one. ok is false when the
// reader gave up (see jsonReader).
func readMessages(payload []byte) (evs []Event, ok bool) {
	r := newJSONReader(payload)
	if r.peek() != '[' {
		var e Event
		if !r.readMessage(&e) || !r.end() {
			return nil, false
		}
		return []Event{e}, true
	}
	r.i++
	for {
		evs = append(evs, Event{})
		if !r.readMessage(&evs[len(evs)-1]) {
			return nil, false
		}
		switch r.peek() {
		case ',':
			r.i++
		case ']':
			r.i++
			return evs, r.end()
		default:
			return nil, false
		}
	}
}
