package events

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
	"github.com/google/go-cmp/cmp"
)

// readerCases are events as the service appends them, in UTC (audit
// entries' times are): the encoders' test cases, awkward strings, the
// benchmark's events and random ones.
func readerCases(t testing.TB) map[string]Event {
	cases := map[string]Event{}
	for name, e := range encodeCases() {
		cases[name] = inUTC(e)
	}
	awkward, _ := awkwardStrings()
	cases["awkward strings, stored as U+FFFD"] = awkward
	for i, e := range benchEncodeEvents() {
		cases[fmt.Sprintf("benchmark %d", i)] = e
	}
	r := rand.New(rand.NewPCG(9, 9))
	for i := range 200 {
		cases[fmt.Sprintf("random %d", i)] = randomEvent(r)
	}
	return cases
}

// inUTC returns e with its times in UTC.
func inUTC(e Event) Event {
	e.Time = e.Time.UTC()
	e.CreateTime, e.StartTime, e.EndTime = e.CreateTime.UTC(), e.StartTime.UTC(), e.EndTime.UTC()
	e.CancelRequestTime = e.CancelRequestTime.UTC()
	return e
}

// randomEvent returns an event with a random subset of its fields set, to
// random values that stay within what encodeEvent accepts.
func randomEvent(r *rand.Rand) Event {
	str := func() string {
		parts := []string{"", "a", "SELECT *\nFROM `p.d.t`", "ünï ✓", "q\"uote\\", "\t<&>", "0", "\u2028", "日本"}
		return parts[r.IntN(len(parts))] + parts[r.IntN(len(parts))]
	}
	some := func() bool { return r.IntN(2) == 0 }
	tm := func() time.Time {
		return time.Unix(r.Int64N(1<<34), r.Int64N(1e9)*int64(r.IntN(2))).UTC()
	}
	i64 := func() *int64 {
		vs := []int64{0, 1, -1, 1<<63 - 1, -1 << 63, r.Int64()}
		return Int64(vs[r.IntN(len(vs))])
	}
	kinds := []Kind{KindInserted, KindStateChanged, KindCompleted, KindProgress, KindReconciled, KindCancelRequested, "other"}
	states := []State{StateUnknown, StatePending, StateRunning, StateDone, "ODD"}
	e := Event{ID: str(), Kind: kinds[r.IntN(len(kinds))], Job: JobKey{str(), str(), str()}, Time: tm(),
		State:  states[r.IntN(len(states))],
		Source: Source{Format: []string{"", "v1", "v2", "api", "operator", "x"}[r.IntN(6)], Method: str(), LogName: str(), InsertID: str()}}
	if some() {
		e.Error = &JobError{Code: str(), Message: str()}
	}
	if some() {
		e.Query, e.QueryTruncated, e.Principal = str(), some(), str()
	}
	if some() {
		e.Labels = map[string]string{}
		for range r.IntN(3) {
			e.Labels[str()] = str()
		}
	}
	if some() {
		e.ReferencedTables = []string{}
		for range r.IntN(3) {
			e.ReferencedTables = append(e.ReferencedTables, str())
		}
	}
	if some() {
		e.CreateTime, e.StartTime = tm(), tm()
	}
	if some() {
		e.SlotMs, e.BytesBilled, e.CompletedUnits = i64(), i64(), i64()
	}
	if some() {
		e.CacheHit = Bool(some())
	}
	return e
}

// TestReaderReadsWhatTheWritersWrite checks that every event as the log and
// the events topic write it is read in place, not left to the json package,
// and reads back as the json package reads it.
func TestReaderReadsWhatTheWritersWrite(t *testing.T) {
	var payloads [][]byte
	var all []Event
	for name, e := range readerCases(t) {
		cell, err := encodeEvent(&e)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, ok := readStoredEvent(cell)
		if !ok {
			t.Errorf("%s: the reader gave up on the cell %s", name, cell)
			continue
		}
		want, err := decodeEventReflect(cell)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the reader and the json package read the cell differently (-json +reader):\n%s", name, cmp.Diff(want, got))
		}

		payload, err := EncodeMessage(&e)
		if err != nil {
			t.Fatal(err)
		}
		gotMsg, ok := readMessages(payload)
		if !ok {
			t.Errorf("%s: the reader gave up on the message %s", name, payload)
			continue
		}
		var wantMsg Event
		if err := jsonv2.Unmarshal(payload, &wantMsg, jsonv1.DefaultOptionsV1()); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gotMsg, []Event{wantMsg}) {
			t.Errorf("%s: the reader and the json package read the message differently (-json +reader):\n%s", name, cmp.Diff([]Event{wantMsg}, gotMsg))
		}
		payloads, all = append(payloads, payload), append(all, wantMsg)
	}
	joined := JoinMessages(payloads)
	got, ok := readMessages(joined)
	if !ok {
		t.Fatalf("the reader gave up on a message of %d events", len(payloads))
	}
	if !reflect.DeepEqual(got, all) {
		t.Errorf("the reader read a message of %d events differently (-json +reader):\n%s", len(all), cmp.Diff(all, got))
	}
}

// readerLiberties are JSON the writers do not write but the json package
// reads (or refuses): the reader must give up on each, or read it as the
// json package does. Each replaces the first match of a pattern in an
// encoded event.
var readerLiberties = []struct{ pattern, new string }{
	{`"id"`, `"ID"`}, {`"query"`, `"Query"`}, {`"slot_ms"`, `"SLOT_MS"`}, {`"id"`, `"\u0069d"`},
	{`\{"v":1,`, `{"v":1,"id":"older",`}, {`"labels":\{`, `"labels":{"a":"1","a":"2",`}, {`"labels":\{`, `"labels":{"\u0061":"1",`},
	{`"labels":\{`, `"labels":{"zz":"1"},"labels":{`}, {`"facts":\{`, `"facts":{"query":"q"},"facts":{`},
	{`"facts":\{`, `"facts":{"slot_ms":1,`}, {`"job_id":"`, "\"job_id\":\"\xff"},
	{`"job_id":"`, `"job_id":"\u0041\ud800`}, {`"job_id":"`, `"job_id":"\u0041\n`}, {`"job_id":"`, "\"job_id\":\"\t"},
	{`"v":1`, `"v":1.0`}, {`"v":1`, `"v":1e0`}, {`"v":1`, `"v":01`}, {`"v":1`, `"v":-0`}, {`"v":1`, `"v":2`},
	{`"v":1`, `"v":null`}, {`"v":1,`, ``}, {`"v":1`, ` "v" : 1 `}, {`"v":1,`, `"v":1 ,`},
	{`"slot_ms":-?[0-9]+`, `"slot_ms":9223372036854775808`}, {`"slot_ms":-?[0-9]+`, `"slot_ms":-9223372036854775809`},
	{`"slot_ms":-?[0-9]+`, `"slot_ms":-9223372036854775808`}, {`"slot_ms":-?[0-9]+`, `"slot_ms":null`},
	{`"slot_ms":-?[0-9]+`, `"slot_ms":"5"`}, {`"slot_ms":-?[0-9]+`, `"slot_ms":18446744073709551616`},
	{`"slot_ms":-?[0-9]+`, `"slot_ms":-0`}, {`"slot_ms":-?[0-9]+`, `"slot_ms":007`}, {`"slot_ms":-?[0-9]+`, `"slot_ms":-`},
	{`"cache_hit":(true|false)`, `"cache_hit":null`}, {`"cache_hit":(true|false)`, `"cache_hit":truex`},
	{`"cache_hit":(true|false)`, `"cache_hit": true `}, {`"cache_hit":(true|false)`, `"cache_hit":fals`},
	{`"error":\{[^}]*\}`, `"error":null`}, {`"error":\{[^}]*\}`, `"error":{}`}, {`"error":\{[^}]*\}`, `"error":{"code":"a","code":"b"}`},
	{`"labels":\{[^}]*\}`, `"labels":null`}, {`"labels":\{[^}]*\}`, `"labels":{}`}, {`"labels":\{[^}]*\}`, `"labels":{"a":1}`},
	{`"referenced_tables":\[[^\]]*\]`, `"referenced_tables":null`}, {`"referenced_tables":\[[^\]]*\]`, `"referenced_tables":[]`},
	{`"referenced_tables":\[[^\]]*\]`, `"referenced_tables":[1]`}, {`"referenced_tables":\[[^\]]*\]`, `"referenced_tables":["a",]`},
	{`"source":\{`, `"source":{"format":"v1","format":"v2",`}, {`"source":\{[^}]*\}`, `"source":null`},
	{`"time":"[^"]*"`, `"time":"2026-02-29T00:00:00Z"`}, {`"time":"[^"]*"`, `"time":"2024-02-29T00:00:00Z"`},
	{`"time":"[^"]*"`, `"time":"2026-01-01T24:00:00Z"`}, {`"time":"[^"]*"`, `"time":"2026-01-01T23:59:60Z"`},
	{`"time":"[^"]*"`, `"time":"2026-01-01T00:00:00+01:00"`}, {`"time":"[^"]*"`, `"time":"2026-01-01T00:00:00.1234567891Z"`},
	{`"time":"[^"]*"`, `"time":"2026-01-01T00:00:00.Z"`}, {`"time":"[^"]*"`, `"time":"2026-01-01t00:00:00z"`},
	{`"time":"[^"]*"`, `"time":"0000-01-01T00:00:00Z"`}, {`"time":"[^"]*"`, `"time":"2026-1-01T00:00:00Z"`},
	{`"time":"[^"]*"`, `"time":"2026-01-01T00:00:00.500Z"`}, {`"time":"[^"]*"`, `"time":"+2026-01-01T00:00:00Z"`},
	{`"time":"[^"]*"`, `"time":"2026-13-01T00:00:00Z"`}, {`"time":"[^"]*"`, `"time":"2026-00-10T00:00:00Z"`},
	{`"time":"[^"]*"`, `"time":"2026-01-01T00:00:00.000000001Z"`}, {`"time":"[^"]*"`, `"time":"2026-01-01T00:00:00Z "`},
	{`"kind":"[^"]*"`, `"kind":"inserted"`}, {`"kind":"[^"]*"`, `"kind":"insert\u0065d"`}, {`"state":"[^"]*"`, `"state":"RUN\u004eING"`},
	{`\}$`, `} `}, {`\}$`, `}x`}, {`^\{`, ` {`}, {`^\{`, `[{`}, {`^\{`, `{}`}, {`:`, ` : `}, {`,`, ` , `}, {`,`, `,,`},
}

// readerSeeds are the encodings of readerCases with each liberty taken.
func readerSeeds(t testing.TB, encode func(*Event) ([]byte, error)) [][]byte {
	var seeds [][]byte
	cases := readerCases(t)
	for _, name := range []string{"every field", "awkward strings", "negative numbers", "empty but not nil", "benchmark 1"} {
		e := cases[name]
		b, err := encode(&e)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
		for _, l := range readerLiberties {
			re := regexp.MustCompile(l.pattern)
			if loc := re.FindIndex(b); loc != nil {
				seeds = append(seeds, slices.Concat(b[:loc[0]], []byte(l.new), b[loc[1]:]))
			}
		}
		for n := range len(b) { // every prefix: truncated values
			if n%7 == 0 {
				seeds = append(seeds, b[:n])
			}
		}
	}
	return seeds
}

// checkStoredReader fails t if the reader reads cell differently from the
// json package, or reads what the json package refuses.
func checkStoredReader(t *testing.T, cell []byte) (read bool) {
	t.Helper()
	got, ok := readStoredEvent(cell)
	if !ok {
		return false
	}
	want, err := decodeEventReflect(cell)
	if err != nil {
		t.Fatalf("the reader read %q, which the json package refuses: %v", cell, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the reader and the json package read %q differently (-json +reader):\n%s", cell, cmp.Diff(want, got))
	}
	return true
}

// checkMessageReader is checkStoredReader for a message's payload.
func checkMessageReader(t *testing.T, payload []byte) (read bool) {
	t.Helper()
	got, ok := readMessages(payload)
	if !ok {
		return false
	}
	var want []Event
	var err error
	if p := bytes.TrimLeft(payload, " \t\r\n"); len(p) > 0 && p[0] == '[' {
		err = jsonv2.Unmarshal(payload, &want, jsonv1.DefaultOptionsV1())
	} else {
		var e Event
		err = jsonv2.Unmarshal(payload, &e, jsonv1.DefaultOptionsV1())
		want = []Event{e}
	}
	if err != nil {
		t.Fatalf("the reader read %q, which the json package refuses: %v", payload, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the reader and the json package read %q differently (-json +reader):\n%s", payload, cmp.Diff(want, got))
	}
	return true
}

// TestReaderLiberties checks the reader against the json package on JSON
// the writers do not write, and that it reads some of it (white space, the
// times and integers it knows) rather than giving up on everything.
func TestReaderLiberties(t *testing.T) {
	read := 0
	seeds := readerSeeds(t, encodeEvent)
	for _, s := range seeds {
		if checkStoredReader(t, s) {
			read++
		}
	}
	msgs := readerSeeds(t, EncodeMessage)
	for _, s := range msgs {
		if checkMessageReader(t, s) {
			read++
		}
	}
	if read < 20 || read == len(seeds)+len(msgs) {
		t.Errorf("the reader read %d of %d variants; want some read and some left to the json package", read, len(seeds)+len(msgs))
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, s := range readerSeeds(f, encodeEvent) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cell []byte) { checkStoredReader(t, cell) })
}

func FuzzUnmarshalMessages(f *testing.F) {
	for _, s := range readerSeeds(f, EncodeMessage) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload []byte) { checkMessageReader(t, payload) })
}
