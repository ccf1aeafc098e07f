package events

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/internal/testutil/golden"
)

// filled returns an event with every field, however deeply nested, set to a
// distinct non-zero value, so that a field the storage shape forgets shows
// up as a difference.
func filled() Event {
	var e Event
	n := 0
	fill(reflect.ValueOf(&e).Elem(), &n)
	return e
}

func fill(v reflect.Value, n *int) {
	*n++
	switch {
	case v.Type() == reflect.TypeOf(time.Time{}):
		v.Set(reflect.ValueOf(time.Date(2026, 11, 1, 12, 0, *n, *n*1001, time.UTC)))
	case v.Kind() == reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case v.Kind() == reflect.Bool:
		v.SetBool(true)
	case v.Kind() == reflect.Int64:
		v.SetInt(int64(*n) << 33)
	case v.Kind() == reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), n)
		}
	case v.Kind() == reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fill(v.Index(0), n)
		fill(v.Index(1), n)
	case v.Kind() == reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, val := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, n)
		fill(val, n)
		v.SetMapIndex(k, val)
	default:
		panic(fmt.Sprintf("fill: no value for %s", v.Type()))
	}
}

func TestStoredEventRoundTrip(t *testing.T) {
	tests := map[string]Event{
		"every field": filled(),
		"minimal":     {ID: "x", Kind: KindProgress, Job: JobKey{"p", "US", "j"}, Time: time.Unix(0, 1)},
		"empty but not nil": {ID: "x", Kind: KindProgress, Job: JobKey{"p", "US", "j"}, Time: time.Unix(1, 0), Error: &JobError{},
			Facts: Facts{Labels: map[string]string{}, SourceURIs: []string{}, BytesBilled: Int64(0), CacheHit: Bool(false)}},
		"offset time": {ID: "x", Kind: KindProgress, Job: JobKey{"p", "US", "j"}, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", -7*3600))},
	}
	for name, e := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := encodeEvent(&e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeEvent(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(e, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStoredEventGolden pins the stored format: what is on disk must stay
// readable, so a change to it shows up here first.
func TestStoredEventGolden(t *testing.T) {
	path := filepath.Join("testdata", "log_stored_event_v1.json")
	e := filled()
	b, err := encodeEvent(&e)
	if err != nil {
		t.Fatal(err)
	}
	golden.JSON(t, path, b)
	stored, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEvent(stored)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e, got); diff != "" {
		t.Errorf("golden decodes differently (-want +got):\n%s", diff)
	}
}

// TestStoredEventEscapes checks that a stored event decodes to the same
// event whichever way its strings were escaped: as the log writes them now
// (shortest form), as encoding/json writes them, and as the log wrote them
// before (testdata/log_stored_event_v1_escapes.json, kept byte for byte:
// \u0008 and \u000c rather than \b and \f, and \ufffd escaped). Never
// regenerate that file: it stands for cells already stored.
func TestStoredEventEscapes(t *testing.T) {
	e, want := awkwardStrings()
	now, err := encodeEvent(&e)
	if err != nil {
		t.Fatal(err)
	}
	reflected, err := reflectEncode(&e)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join("testdata", "log_stored_event_v1_escapes.json"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"now": now, "encoding/json": reflected, "before": before} {
		got, err := decodeEvent(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: decoded event differs (-want +got):\n%s", name, diff)
		}
	}
	for _, old := range []string{`\u0008`, `\u000c`, `\ufffd`} {
		if !strings.Contains(string(before), old) {
			t.Errorf("testdata/log_stored_event_v1_escapes.json lost its old escape %s: it was rewritten", old)
		}
	}
}

// TestDecodeAsEncodingJSON checks that stored events decode as they did
// with encoding/json, which the log used to read them with, whatever their
// JSON's liberties.
func TestDecodeAsEncodingJSON(t *testing.T) {
	e := filled()
	e.Time = time.Date(2026, 11, 1, 12, 0, 0, 123456789, time.UTC)
	cell, err := encodeEvent(&e)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cell string
	}{
		{"as the log writes it", string(cell)},
		{"names in another case", strings.Replace(strings.Replace(string(cell), `"job_id"`, `"JOB_ID"`, 1), `"query"`, `"Query"`, 1)},
		{"a member twice, the last one counts", strings.Replace(string(cell), `{"v":1,`, `{"v":1,"id":"an older id",`, 1)},
		{"invalid UTF-8 in a string", strings.Replace(string(cell), `"job_id":"`, "\"job_id\":\"\xff", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s storedEvent
			if err := json.Unmarshal([]byte(tt.cell), &s); err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
			got, err := decodeEvent([]byte(tt.cell))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, s.event()); diff != "" {
				t.Errorf("decoded event (-got +as encoding/json decodes it):\n%s", diff)
			}
		})
	}
}

// reflectEncode is the reference for encodeEvent: storedEvent through
// encoding/json.
func reflectEncode(e *Event) ([]byte, error) {
	s := storedEvent{
		Version: storageVersion, ID: e.ID, Kind: string(e.Kind),
		Project: e.Job.Project, Location: e.Job.Location, JobID: e.Job.JobID,
		Time: e.Time, State: string(e.State), Facts: storedFactsOf(&e.Facts),
		Source: storedSource{Format: e.Source.Format, Method: e.Source.Method, LogName: e.Source.LogName, InsertID: e.Source.InsertID},
	}
	if e.Error != nil {
		s.Error = &storedError{Code: e.Error.Code, Message: e.Error.Message}
	}
	b, err := json.Marshal(&s)
	if err != nil {
		return nil, fmt.Errorf("encoding event %s: %w", e.ID, err)
	}
	return b, nil
}

// encodeCases are events whose encodings are compared with the reference.
func encodeCases() map[string]Event {
	k := JobKey{"p", "US", "j"}
	return map[string]Event{
		"every field": filled(),
		"minimal":     {ID: "x", Kind: KindProgress, Job: k, Time: time.Unix(0, 1)},
		"empty but not nil": {ID: "x", Job: k, Time: time.Unix(1, 0), Error: &JobError{},
			Facts: Facts{Labels: map[string]string{}, SourceURIs: []string{}, BytesBilled: Int64(0), CacheHit: Bool(false)}},
		"awkward strings": {ID: "q\"uote\\", Job: k, Time: time.Unix(1, 0), Facts: Facts{
			Query:  "SELECT '\x00\x01\x1f\t\n\r' <b>&amp;</b> \u2028\u2029 ünï ✓ 🙂 \xff\xfe broken \xe2\x82",
			Labels: map[string]string{"b": "2", "a": "1", "\x7f": "del", "": ""}, SourceURIs: []string{"", "gs://x"}}},
		"negative numbers": {ID: "x", Job: k, Time: time.Unix(1, 0), Facts: Facts{SlotMs: Int64(-1 << 63), OutputRows: Int64(1<<63 - 1)}},
	}
}

// TestEncodeMatchesReflection checks the hand-written encoder against
// encoding/json on storedEvent: the same members in the same order, the
// same values, and, once encoding/json's strings are rewritten in their
// shortest form, the same bytes.
func TestEncodeMatchesReflection(t *testing.T) {
	for name, e := range encodeCases() {
		t.Run(name, func(t *testing.T) { compareEncodings(t, &e) })
	}
}

func compareEncodings(t *testing.T, e *Event) {
	t.Helper()
	got, err := encodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	want, err := reflectEncode(e)
	if err != nil {
		t.Fatal(err)
	}
	var gotJSON, wantJSON any
	if err := json.Unmarshal(got, &gotJSON); err != nil {
		t.Fatalf("encodeEvent wrote invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &wantJSON); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantJSON, gotJSON); diff != "" {
		t.Errorf("encodeEvent differs from encoding/json (-json +encodeEvent):\n%s", diff)
	}
	shortest := jsontext.Value(want)
	if err := shortest.Format(); err != nil {
		t.Fatalf("formatting encoding/json's %s: %v", want, err)
	}
	if string(got) != string(shortest) {
		t.Errorf("encodeEvent bytes differ from encoding/json's in shortest form:\n got %s\nwant %s", got, shortest)
	}
}

func FuzzEncodeEvent(f *testing.F) {
	f.Add("SELECT 1", "team", "a", int64(5))
	f.Add("\x00\"\\\xff\u2028", "\xc3", "", int64(-1))
	f.Fuzz(func(t *testing.T, query, label, value string, n int64) {
		e := Event{ID: label, Kind: KindInserted, Job: JobKey{"p", "US", value}, Time: time.Unix(0, n),
			Facts: Facts{Query: query, Labels: map[string]string{label: value}, ReferencedTables: []string{query, value}, SlotMs: &n}}
		compareEncodings(t, &e)
	})
}

func TestEncodeEventErrors(t *testing.T) {
	e := Event{ID: "x", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := encodeEvent(&e); err == nil {
		t.Error("encodeEvent of a time in year 10000 succeeded; want an error")
	}
}

func TestDecodeEventErrors(t *testing.T) {
	for name, value := range map[string]string{
		"not json":       `{"v":1,`,
		"future version": `{"v":2,"id":"x"}`,
		"no version":     `{"id":"x"}`,
		"wrong type":     `{"v":1,"id":7}`,
	} {
		if _, err := decodeEvent([]byte(value)); err == nil {
			t.Errorf("decodeEvent(%s) succeeded; want an error", name)
		}
	}
}

func TestRowKeys(t *testing.T) {
	k := JobKey{Project: "p", Location: "US", JobID: "job_1"}
	ts := time.Date(2026, 11, 1, 12, 0, 0, 5, time.UTC)
	got := []string{jobRowKey(k), openRowKey(k), eventQualifier(ts, "ev-1"), timeRowKey(ts, "ev-1"), timeRowKey(ts, "abc")}
	// The salt is the low byte of CRC-32 (IEEE) of "p\x00US\x00job_1"; the
	// shard is CRC-32 of the event id modulo 16.
	want := []string{
		"j#30#p#US#job_1",
		"o#30#p#US#job_1",
		"1793534400000000005#ev-1",
		"t#10#1793534400000000005#ev-1",
		"t#02#1793534400000000005#abc",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("row keys changed (-want +got):\n%s", diff)
	}
}

// TestKeyOrder checks that qualifiers and time-row keys sort as their
// events do, by (Time, ID).
func TestKeyOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	ids := []string{"", "a", "a#", "ab", "b", "ff", "0", "~"}
	randEvent := func() Event {
		return Event{ID: ids[r.IntN(len(ids))], Time: time.Unix(0, r.Int64N(3)*int64(time.Millisecond)+r.Int64N(3))}
	}
	sign := func(c int) int { return max(-1, min(1, c)) }
	for range 2000 {
		a, b := randEvent(), randEvent()
		want := sign(compareEvents(&a, &b))
		if got := sign(strings.Compare(eventQualifier(a.Time, a.ID), eventQualifier(b.Time, b.ID))); got != want {
			t.Fatalf("qualifiers of %v and %v compare %d; events compare %d", a, b, got, want)
		}
		shard := timeShard(a.ID)
		if got := sign(strings.Compare(shardPrefix(shard)+eventQualifier(a.Time, a.ID), shardPrefix(shard)+eventQualifier(b.Time, b.ID))); got != want {
			t.Fatalf("time rows of %v and %v compare %d; events compare %d", a, b, got, want)
		}
	}
}

func TestTimeBound(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Unix(0, 0), "t#03#0000000000000000000"},
		{time.Unix(1, 2), "t#03#0000000001000000002"},
		{time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), "t#03#"},
		{time.Date(2262, 4, 12, 0, 0, 0, 0, time.UTC), "t#03#:"},
	}
	for _, tt := range tests {
		if got := timeBound(3, tt.t); got != tt.want {
			t.Errorf("timeBound(3, %s) = %q; want %q", tt.t, got, tt.want)
		}
	}
}

func TestParseOpenRowKey(t *testing.T) {
	k := JobKey{Project: "my-project", Location: "asia-northeast1", JobID: "bquxjob_1a2b"}
	got, err := parseOpenRowKey(openRowKey(k))
	if err != nil || got != k {
		t.Errorf("parseOpenRowKey(openRowKey(%v)) = %v, %v; want the key back", k, got, err)
	}
	for _, bad := range []string{"j#30#p#US#job_1", "o#30#p#US", "o#30#p#US#j#x", "o#30##US#j"} {
		if _, err := parseOpenRowKey(bad); err == nil {
			t.Errorf("parseOpenRowKey(%q) succeeded; want an error", bad)
		}
	}
}

func TestChunks(t *testing.T) {
	rowsOf := func(sizes ...int) []*row {
		rows := make([]*row, len(sizes))
		for i, s := range sizes {
			rows[i] = &row{key: fmt.Sprint(i), bytes: s, phase: phaseEvents}
			if s < 0 { // an index entry removed
				rows[i].bytes, rows[i].phase = -s, phaseClose
			}
		}
		return rows
	}
	const mb = 1 << 20
	tests := []struct {
		name    string
		sizes   []int
		maxRows int
		want    []int // rows per chunk
	}{
		{"none", nil, 10, nil},
		{"by rows", []int{1, 1, 1, 1, 1}, 2, []int{2, 2, 1}},
		{"by bytes", []int{mb, mb, mb, mb, mb}, 100, []int{3, 2}},
		{"oversized row alone", []int{1, 5 * mb, 1}, 100, []int{1, 1, 1}},
		{"removals from the index after the events, apart", []int{1, 1, 1, -1, -1}, 100, []int{3, 2}},
		{"only removals", []int{-1, -1}, 100, []int{2}},
	}
	for _, tt := range tests {
		var got []int
		for _, c := range chunks(rowsOf(tt.sizes...), tt.maxRows) {
			got = append(got, len(c))
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: chunk sizes mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestBuildRowsOrder checks the write order of an append: index entries
// set first, events next, index entries removed last; DONE wins within
// one append; duplicates are written once.
func TestBuildRowsOrder(t *testing.T) {
	run, done := JobKey{"p", "US", "running"}, JobKey{"p", "US", "done"}
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	evs := []Event{
		{ID: "1", Kind: KindCompleted, Job: done, Time: t0, State: StateDone},
		{ID: "2", Kind: KindInserted, Job: run, Time: t0, State: StateRunning},
		{ID: "3", Kind: KindInserted, Job: done, Time: t0.Add(time.Second), State: StateRunning},
		{ID: "2", Kind: KindInserted, Job: run, Time: t0, State: StateRunning},
	}
	rows, err := buildRows(evs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r.key)
	}
	q := func(id string, d time.Duration) string { return eventQualifier(t0.Add(d), id) }
	want := []string{
		openRowKey(run),
		jobRowKey(done), shardPrefix(timeShard("1")) + q("1", 0),
		jobRowKey(run), shardPrefix(timeShard("2")) + q("2", 0),
		shardPrefix(timeShard("3")) + q("3", time.Second),
		openRowKey(done),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows mismatch (-want +got):\n%s", diff)
	}
}

// awkwardStrings returns an event whose strings need every kind of escape
// and hold invalid UTF-8, and the event its stored form decodes to: each
// invalid byte replaced with U+FFFD.
func awkwardStrings() (in, stored Event) {
	in = Event{
		ID: "ev \"1\" \\", Kind: KindProgress, Job: JobKey{"p", "US", "j"},
		Time:  time.Date(2026, 11, 1, 12, 0, 0, 5, time.UTC),
		Error: &JobError{Code: "ctl \x00\x01\b\f\x1f\x7f", Message: "tab\tnl\nrc\r"},
		Facts: Facts{
			Query:            "SELECT '<b>&amp;</b>' \u2028\u2029 ünï ✓ 🙂 bad \xff\xfe cut \xe2\x82",
			Labels:           map[string]string{"\b": "\f", "k\xff": "v"},
			ReferencedTables: []string{"a\"b", "\xc3"},
		},
	}
	stored = in
	stored.Facts.Query = "SELECT '<b>&amp;</b>' \u2028\u2029 ünï ✓ 🙂 bad \uFFFD\uFFFD cut \uFFFD\uFFFD"
	stored.Facts.Labels = map[string]string{"\b": "\f", "k\uFFFD": "v"}
	stored.Facts.ReferencedTables = []string{"a\"b", "\uFFFD"}
	return in, stored
}
