package auditlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// converter turns lenient wire scalars into domain values. It keeps the
// first failure, like bufio.Scanner, so conversion code reads straight
// through and checks once at the end.
type converter struct {
	err error
}

// fail records a field that could not be converted, unless an earlier one
// already failed.
func (c *converter) fail(field, value string, err error) {
	if c.err == nil {
		c.err = invalid(ReasonBadField, err, "%s: cannot use %q", field, truncate(value, 64))
	}
}

// int64Text is an int64 as it appeared in the JSON: Cloud Logging writes
// int64 values as strings, and some collectors as numbers. It is kept as
// text while decoding, so that a bad value is reported with its field name
// by converter.int64 instead of aborting the whole decode.
type int64Text string

// UnmarshalJSON keeps a string's contents, or any other value's JSON text.
func (n *int64Text) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*n = ""
	case b[0] == '"' && bytes.IndexByte(b, '\\') < 0:
		*n = int64Text(b[1 : len(b)-1])
	case b[0] == '"':
		var s string
		err := json.Unmarshal(b, &s)
		*n = int64Text(s)
		return err
	default:
		*n = int64Text(b)
	}
	return nil
}

// int64 converts an int64 that Cloud Logging wrote as a JSON string or
// number, tolerating an integral float such as 1.0. Absent is nil. An
// integer beyond int64 reads as the limit of its sign, which the
// plausibility rule (events.Event.DropImplausible) then drops with a
// warning: no real statistic comes near it.
func (c *converter) int64(field string, n int64Text) *int64 {
	if n == "" {
		return nil
	}
	v, err := saturatingInt(string(n))
	if err != nil {
		c.fail(field, string(n), err)
		return nil
	}
	return &v
}

// time converts an RFC 3339 time with any number of fractional digits (and
// the space-separated, zone-less form some collectors write, read as UTC).
// Absent is the zero time.
func (c *converter) time(field, s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := parseTime(s)
	if err != nil {
		c.fail(field, s, err)
	}
	return t
}

var errNotIntegral = errors.New("not an integer")

func parseInt(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err == nil {
		return v, nil
	}
	f, ferr := strconv.ParseFloat(s, 64)
	// 2^63 is exactly representable, so >= rejects everything out of range.
	if ferr != nil || f != math.Trunc(f) || f >= math.MaxInt64 || f < math.MinInt64 {
		return 0, errNotIntegral
	}
	return int64(f), nil
}

// saturatingInt is parseInt, except that an integer beyond int64 (written
// as digits or as an integral float) is the int64 limit of its sign.
func saturatingInt(s string) (int64, error) {
	if v, err := parseInt(s); err == nil {
		return v, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if (err != nil && !errors.Is(err, strconv.ErrRange)) || math.IsNaN(f) || f != math.Trunc(f) {
		return 0, errNotIntegral
	}
	if f < 0 {
		return math.MinInt64, nil
	}
	return math.MaxInt64, nil
}

// Layouts tried after RFC 3339. Fractional seconds of any length are
// accepted after the seconds field even though the layouts omit them.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err == nil {
		return t.UTC(), nil
	}
	u := strings.ToUpper(s) // RFC 3339 allows "t" and "z".
	for _, layout := range timeLayouts {
		if t, lerr := time.Parse(layout, u); lerr == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// nonEmpty returns s, or nil when it is empty, so that an empty JSON array
// and an absent one decode alike.
func nonEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
