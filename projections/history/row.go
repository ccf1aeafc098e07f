package history

//go:generate go run ../../events/internal/genjob history

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/managedwriter/adapt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/bqobserver/bqobserver/events"
)

// rowType is a row of job_versions as the Storage Write API takes it: a
// protocol buffer message whose descriptor is derived from the table schema
// (schema.JobVersions, checked in and generated from the field table), not
// written by hand. Its fields are the table's columns, in order.
type rowType struct {
	schema bigquery.Schema
	desc   protoreflect.MessageDescriptor
	// proto is desc self-contained, as the writer sends it to BigQuery.
	proto  *descriptorpb.DescriptorProto
	fields []protoreflect.FieldDescriptor // by column
}

// newRowType derives the row's descriptor from a table schema, which must
// have the columns this build writes, in their order.
func newRowType(s bigquery.Schema) (*rowType, error) {
	ts, err := adapt.BQSchemaToStorageTableSchema(s)
	if err != nil {
		return nil, fmt.Errorf("converting the table schema: %w", err)
	}
	d, err := adapt.StorageSchemaToProto2Descriptor(ts, "job_version")
	if err != nil {
		return nil, fmt.Errorf("deriving the row descriptor: %w", err)
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, fmt.Errorf("deriving the row descriptor: got a %T", d)
	}
	dp, err := adapt.NormalizeDescriptor(md)
	if err != nil {
		return nil, fmt.Errorf("normalizing the row descriptor: %w", err)
	}
	r := &rowType{schema: s, desc: md, proto: dp, fields: make([]protoreflect.FieldDescriptor, len(columns))}
	fds := md.Fields()
	if fds.Len() != len(columns) {
		return nil, fmt.Errorf("the table schema has %d columns; this build writes %d", fds.Len(), len(columns))
	}
	for i, name := range columns {
		if got := string(fds.Get(i).Name()); got != name {
			return nil, fmt.Errorf("column %d of the table schema is %s; this build writes %s there", i, got, name)
		}
		r.fields[i] = fds.Get(i)
	}
	return r, nil
}

// message builds j's row.
func (r *rowType) message(j *events.Job, d *Derived) *dynamicpb.Message {
	m := dynamicpb.NewMessage(r.desc)
	r.fill(m, j, d)
	return m
}

// errRowRejected marks a row that BigQuery refuses, or would refuse, for
// good: sending it again cannot help.
var errRowRejected = errors.New("row rejected")

// encode builds j's row and serializes it.
func (r *rowType) encode(j *events.Job, d *Derived) ([]byte, error) {
	b, err := proto.Marshal(r.message(j, d))
	if err != nil {
		return nil, fmt.Errorf("encoding the row of job %s: %w: %w", j.Key, errRowRejected, err)
	}
	return b, nil
}

// The setters below set column col of row m; they leave a column NULL (or
// a repeated one empty) for a value that is not known.

func (r *rowType) setString(m protoreflect.Message, col int, v string) {
	if v != "" {
		m.Set(r.fields[col], protoreflect.ValueOfString(v))
	}
}

func (r *rowType) setBool(m protoreflect.Message, col int, v bool) {
	m.Set(r.fields[col], protoreflect.ValueOfBool(v))
}

func (r *rowType) setInt64(m protoreflect.Message, col int, v int64) {
	m.Set(r.fields[col], protoreflect.ValueOfInt64(v))
}

func (r *rowType) setFloat(m protoreflect.Message, col int, v float64) {
	m.Set(r.fields[col], protoreflect.ValueOfFloat64(v))
}

func (r *rowType) setInt64Ptr(m protoreflect.Message, col int, v *int64) {
	if v != nil {
		r.setInt64(m, col, *v)
	}
}

func (r *rowType) setBoolPtr(m protoreflect.Message, col int, v *bool) {
	if v != nil {
		r.setBool(m, col, *v)
	}
}

func (r *rowType) setFloatPtr(m protoreflect.Message, col int, v *float64) {
	if v != nil {
		r.setFloat(m, col, *v)
	}
}

// setTime sets a TIMESTAMP, which the Storage Write API takes in
// microseconds since the epoch.
func (r *rowType) setTime(m protoreflect.Message, col int, v time.Time) {
	if !v.IsZero() {
		r.setInt64(m, col, v.UnixMicro())
	}
}

func (r *rowType) setStrings(m protoreflect.Message, col int, vs []string) {
	if len(vs) == 0 {
		return
	}
	l := m.Mutable(r.fields[col]).List()
	for _, v := range vs {
		l.Append(protoreflect.ValueOfString(v))
	}
}

// setTable sets a RECORD(project_id, dataset_id, table_id) from a table
// name, project.dataset.table; a name of another shape is kept whole in
// table_id.
func (r *rowType) setTable(m protoreflect.Message, col int, name string) {
	if name != "" {
		setRecord(m.Mutable(r.fields[col]).Message(), tableParts(name)...)
	}
}

func (r *rowType) setTables(m protoreflect.Message, col int, names []string) {
	if len(names) == 0 {
		return
	}
	l := m.Mutable(r.fields[col]).List()
	for _, n := range names {
		e := l.NewElement()
		setRecord(e.Message(), tableParts(n)...)
		l.Append(e)
	}
}

func tableParts(name string) []string {
	parts := strings.Split(name, ".")
	if len(parts) != 3 || slices.Contains(parts, "") {
		return []string{"project_id", "", "dataset_id", "", "table_id", name}
	}
	return []string{"project_id", parts[0], "dataset_id", parts[1], "table_id", parts[2]}
}

// setKeyValues sets a repeated RECORD(key, value) from a map, by key.
func (r *rowType) setKeyValues(m protoreflect.Message, col int, kv map[string]string) {
	if len(kv) == 0 {
		return
	}
	l := m.Mutable(r.fields[col]).List()
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		e := l.NewElement()
		setRecord(e.Message(), "key", k, "value", kv[k])
		l.Append(e)
	}
}

// setError sets a RECORD(reason, location, message) from a job's error:
// its code is the reason; the audit log names no location.
func (r *rowType) setError(m protoreflect.Message, col int, e *events.JobError) {
	if e != nil && *e != (events.JobError{}) {
		setRecord(m.Mutable(r.fields[col]).Message(), "reason", e.Code, "message", e.Message)
	}
}

// setRecord sets the string fields of a record, given as name, value pairs;
// an empty value stays NULL.
func setRecord(m protoreflect.Message, nameValues ...string) {
	fds := m.Descriptor().Fields()
	for i := 0; i < len(nameValues); i += 2 {
		if v := nameValues[i+1]; v != "" {
			m.Set(fds.ByName(protoreflect.Name(nameValues[i])), protoreflect.ValueOfString(v))
		}
	}
}
