package running

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/bqobserver/bqobserver/events"
)

// appendJob appends the JSON of jobOf(&view{*j, stale, hidden}, preview) to b:
// what encoding/json writes for it, byte for byte but for strings, which
// take their shortest form (<, >, &, U+2028 and U+2029 are not escaped), as
// a test holds it to. It does so without reflection, and without allocating
// unless a string is not valid UTF-8: lists and streams encode many jobs,
// often under the store's read lock. It reports false, leaving b as it was,
// for a job encoding/json would refuse (a time outside years 0-9999).
func appendJob(b []byte, j *events.Job, stale, hidden bool, preview int) ([]byte, bool) {
	if !encodableTimes(j) {
		return b, false
	}
	return appendJobFields(b, j, stale, hidden, preview), true
}

// encodable reports whether JSON can hold t: encoding/json refuses years
// outside 0 to 9999.
func encodable(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y <= 9999
}

// appendJobOrError appends a job's JSON, or, for a job JSON cannot encode,
// an object saying why.
func appendJobOrError(b []byte, j *events.Job, stale, hidden bool, preview int) []byte {
	if out, ok := appendJob(b, j, stale, hidden, preview); ok {
		return out
	}
	_, err := json.Marshal(jobOf(&view{job: *j, stale: stale, hidden: hidden}, preview))
	msg := "cannot encode the job"
	if err != nil {
		msg = err.Error()
	}
	b = appendKey(append(b, `{"key":`...), j.Key)
	b = append(b, `,"encoding_error":`...)
	return append(appendString(b, msg), '}')
}

// appendText writes a text and its truncation flag, the text shortened to
// preview bytes if longer: then the members previewName and bytesName say
// so and give the whole text's length. A hidden text is left out, and the
// member hiddenName says that it is hidden.
func appendText(b []byte, text string, truncated, hidden bool, preview int, name, truncatedName, previewName, bytesName, hiddenName string) []byte {
	if hidden {
		return appendTrue(b, hiddenName, true)
	}
	shortened := preview > 0 && len(text) > preview
	if shortened {
		b = appendStr(b, name, clip(text, preview))
	} else {
		b = appendStr(b, name, text)
	}
	b = appendTrue(b, truncatedName, truncated)
	if shortened {
		b = appendTrue(b, previewName, true)
		b = strconv.AppendInt(append(append(append(b, `,"`...), bytesName...), `":`...), int64(len(text)), 10)
	}
	return b
}

// appendError writes a job's error, an object of its code and message.
func appendError(b []byte, name string, e *events.JobError) []byte {
	if e == nil {
		return b
	}
	b = append(append(append(b, `,"`...), name...), `":{`...)
	sep := ""
	if e.Code != "" {
		b = appendString(append(b, `"code":`...), e.Code)
		sep = ","
	}
	if e.Message != "" {
		b = appendString(append(b, sep+`"message":`...), e.Message)
	}
	return append(b, '}')
}

// appendMap writes a map with its keys sorted; an empty one is omitted.
func appendMap(b []byte, name string, m map[string]string) []byte {
	if len(m) == 0 {
		return b
	}
	b = append(append(append(b, `,"`...), name...), `":{`...)
	keys := make([]string, 0, 16) // on the stack for a job's few labels
	keys = slices.AppendSeq(keys, maps.Keys(m))
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendString(b, k), ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

func appendStr(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(append(append(b, `,"`...), name...), `":`...)
	return appendString(b, v)
}

func appendStrs(b []byte, name string, vs []string) []byte {
	if len(vs) == 0 {
		return b
	}
	b = append(append(append(b, `,"`...), name...), `":[`...)
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, v)
	}
	return append(b, ']')
}

func appendTime(b []byte, name string, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b = append(append(append(b, `,"`...), name...), `":"`...)
	return append(t.AppendFormat(b, time.RFC3339Nano), '"')
}

func appendInt(b []byte, name string, v *int64) []byte {
	if v == nil {
		return b
	}
	b = append(append(append(b, `,"`...), name...), `":`...)
	return strconv.AppendInt(b, *v, 10)
}

func appendBool(b []byte, name string, v *bool) []byte {
	if v == nil {
		return b
	}
	b = append(append(append(b, `,"`...), name...), `":`...)
	return strconv.AppendBool(b, *v)
}

func appendTrue(b []byte, name string, v bool) []byte {
	if !v {
		return b
	}
	return append(append(append(b, `,"`...), name...), `":true`...)
}

// appendString appends s as a JSON string in its shortest form. Where s is
// not valid UTF-8 each invalid byte becomes U+FFFD, as encoding/json has it,
// which is all the error AppendQuote then returns reports: a job is shown
// rather than refused for one bad byte.
func appendString(b []byte, s string) []byte {
	b, _ = jsontext.AppendQuote(b, s)
	return b
}
