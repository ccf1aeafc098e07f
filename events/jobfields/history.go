package jobfields

// HistoryColumn is a column of the BigQuery job history that no field of a
// job holds: a row derives it, when it is written, from the fold, the job's
// events and the checked-in price table.
type HistoryColumn struct {
	// Name is the Go name of the value in the history's derived values
	// (history.Derived).
	Name   string
	Column Column
}

// HistoryColumns are the columns the history adds after the fields' own, in
// the order of the table: the one place they are declared. The history
// package derives each of them; the table schema, the row descriptor and
// the conversion to a row follow from this list and Fields.
var HistoryColumns = []HistoryColumn{
	{Name: "EstimatedCostUSD", Column: describe(added("estimated_cost_usd", "FLOAT64"),
		"On-demand cost estimate in US dollars: bytes billed times the on-demand price of the job's location (schema/prices.json); NULL for a job in a reservation, a script's parent job (its bytes are its children's, each priced on its own), a location without a price, or bytes billed not known.")},
	{Name: "QueuedMs", Column: describe(added("queued_ms", "INT64"),
		"Milliseconds from creation to start: how long the job waited for slots. NULL while not known.")},
	{Name: "RunMs", Column: describe(added("run_ms", "INT64"),
		"Milliseconds from start to end. NULL until the job finished.")},
	{Name: "EventCount", Column: describe(required(added("event_count", "INT64")),
		"How many events of the job this version folds; the versions of a job with more events are later ones.")},
	{Name: "FinalStateSource", Column: describe(added("final_state_source", "STRING"),
		"Where the final state came from: audit_log (a completion entry), api (BigQuery's jobs API), reconciliation (closed because its completion never arrived), or the event's source otherwise. NULL until DONE.")},
	{Name: "VersionTime", Column: describe(required(added("version_time", "TIMESTAMP")),
		"When this version was written; among versions folding as many events, the latest wins.")},
}

// TableColumns returns every column of the BigQuery job history, in the
// order of its table schema: the fields' columns (Columns), then
// HistoryColumns.
func TableColumns() []Column {
	out := Columns()
	for _, h := range HistoryColumns {
		out = append(out, h.Column)
	}
	return out
}

// describe gives c its description.
func describe(c Column, doc string) Column { c.Description = doc; return c }
