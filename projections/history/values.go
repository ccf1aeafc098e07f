package history

import (
	"maps"
	"math"
	"slices"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Row is a row of the history as column values, the shape both a row the
// sink writes and a row BigQuery returns take, so that they compare: nil for
// NULL, string, int64, float64, bool, time.Time (UTC, to the microsecond)
// for TIMESTAMP, map[string]any for a RECORD, []any for a repeated column
// (nil when empty).
type Row map[string]any

// values returns the column values of m, a row of the table schema s.
func values(m protoreflect.Message, s bigquery.Schema) Row {
	row := make(Row, len(s))
	fds := m.Descriptor().Fields()
	for i, f := range s {
		row[f.Name] = fieldValue(m, fds.Get(i), f)
	}
	return row
}

func fieldValue(m protoreflect.Message, fd protoreflect.FieldDescriptor, f *bigquery.FieldSchema) any {
	if fd.IsList() {
		l := m.Get(fd).List()
		if l.Len() == 0 {
			return nil
		}
		out := make([]any, l.Len())
		for i := range out {
			out[i] = scalar(l.Get(i), f)
		}
		return out
	}
	if !m.Has(fd) {
		return nil
	}
	return scalar(m.Get(fd), f)
}

func scalar(v protoreflect.Value, f *bigquery.FieldSchema) any {
	switch f.Type {
	case bigquery.RecordFieldType:
		return record(values(v.Message(), f.Schema))
	case bigquery.TimestampFieldType:
		return time.UnixMicro(v.Int()).UTC()
	}
	return v.Interface()
}

// record returns a record's values, or nil when all are NULL: BigQuery and
// its emulator do not agree on whether such a record is NULL.
func record(r map[string]any) any {
	for _, v := range r {
		if v != nil {
			return r
		}
	}
	return nil
}

// fromBigQuery converts a value the BigQuery client returned to the shape
// of a Row's values.
func fromBigQuery(v bigquery.Value) any {
	switch v := v.(type) {
	case time.Time:
		return v.UTC().Truncate(time.Microsecond)
	case []bigquery.Value:
		if len(v) == 0 {
			return nil
		}
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = fromBigQuery(e)
		}
		return out
	case map[string]bigquery.Value:
		r := make(map[string]any, len(v))
		for k, e := range v {
			r[k] = fromBigQuery(e)
		}
		return record(r)
	}
	return v
}

// differences returns the columns whose values differ between want and got,
// other than ignore, in column order of s.
func differences(want, got Row, s bigquery.Schema, ignore ...string) []ColumnDiff {
	var out []ColumnDiff
	for _, f := range s {
		if slices.Contains(ignore, f.Name) {
			continue
		}
		if !same(want[f.Name], got[f.Name]) {
			out = append(out, ColumnDiff{Column: f.Name, Log: want[f.Name], BigQuery: got[f.Name]})
		}
	}
	return out
}

// same reports whether two values of a Row are equal; floats within a
// relative 1e-9, since BigQuery returns them as decimal text.
func same(a, b any) bool {
	switch a := a.(type) {
	case float64:
		b, ok := b.(float64)
		return ok && math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
	case time.Time:
		b, ok := b.(time.Time)
		return ok && a.Equal(b)
	case []any:
		b, ok := b.([]any)
		return ok && slices.EqualFunc(a, b, same)
	case map[string]any:
		b, ok := b.(map[string]any)
		return ok && maps.EqualFunc(a, b, same)
	}
	return a == b
}
