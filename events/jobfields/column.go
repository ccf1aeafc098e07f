package jobfields

// Column is a column of the BigQuery job history: a field of a BigQuery
// table schema, in the shape of its JSON form (TableFieldSchema).
type Column struct {
	Name string `json:"name"`
	// Type is a GoogleSQL type name: STRING, INT64, FLOAT64, BOOL,
	// TIMESTAMP or RECORD.
	Type string `json:"type"`
	// Mode is REQUIRED, REPEATED or, when empty, NULLABLE.
	Mode        string   `json:"mode,omitempty"`
	Description string   `json:"description,omitempty"`
	Fields      []Column `json:"fields,omitempty"`
	// From is how a history row takes the column from its field.
	From Conversion `json:"-"`
	// Standard is set when INFORMATION_SCHEMA.JOBS has a column of this
	// name and type, so that its example queries run unchanged; the others
	// are what the history adds.
	Standard bool `json:"-"`
}

// Conversion is how a history row takes a column from its field.
type Conversion int

// The conversions.
const (
	// Copy takes the value as it is (a list as a repeated column).
	Copy Conversion = iota
	// TableName splits a table name, project.dataset.table, into a
	// RECORD(project_id, dataset_id, table_id); a list of names into a
	// repeated one. A name that is not three dotted parts is kept whole in
	// table_id.
	TableName
	// KeyValue turns a map into a repeated RECORD(key, value), ordered by key.
	KeyValue
	// ErrorResult turns a job's error into RECORD(reason, location,
	// message): its code is the reason; the audit log names no location.
	ErrorResult
)

// The column modes.
const (
	Required = "REQUIRED"
	Repeated = "REPEATED"
)

// Columns returns the BigQuery job history's columns, one a field, in the
// order of Fields, each described by its field's Doc.
func Columns() []Column {
	out := make([]Column, len(Fields))
	for i, f := range Fields {
		out[i] = f.Column
		if out[i].Description == "" {
			out[i].Description = f.Doc
		}
	}
	return out
}

// standard is a column INFORMATION_SCHEMA.JOBS has, taken as it is.
func standard(name, typ string) Column { return Column{Name: name, Type: typ, Standard: true} }

// added is a column the history adds to INFORMATION_SCHEMA.JOBS's.
func added(name, typ string) Column { return Column{Name: name, Type: typ} }

// repeated makes c a repeated column.
func repeated(c Column) Column { c.Mode = Repeated; return c }

// required makes c a required column.
func required(c Column) Column { c.Mode = Required; return c }

// tableRecord is a table name as INFORMATION_SCHEMA.JOBS writes it.
func tableRecord(name string, standard bool) Column {
	return Column{Name: name, Type: "RECORD", From: TableName, Standard: standard, Fields: []Column{
		{Name: "project_id", Type: "STRING"}, {Name: "dataset_id", Type: "STRING"}, {Name: "table_id", Type: "STRING"},
	}}
}

// keyValues is a map as INFORMATION_SCHEMA.JOBS writes labels.
func keyValues(name string) Column {
	return Column{Name: name, Type: "RECORD", Mode: Repeated, From: KeyValue, Standard: true, Fields: []Column{
		{Name: "key", Type: "STRING"}, {Name: "value", Type: "STRING"},
	}}
}

// errorResult is a job's error as INFORMATION_SCHEMA.JOBS writes it.
func errorResult(name string) Column {
	return Column{Name: name, Type: "RECORD", From: ErrorResult, Standard: true, Fields: []Column{
		{Name: "reason", Type: "STRING"}, {Name: "location", Type: "STRING"}, {Name: "message", Type: "STRING"},
	}}
}
