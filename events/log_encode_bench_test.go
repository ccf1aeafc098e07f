package events

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// BenchmarkEncodeEvent measures the cell value of one event, written by
// encodeEvent and, for comparison, by encoding/json on storedEvent, and the
// event's message on the events topic, written by EncodeMessage and by
// encoding/json: an inserted event with a 2 KB query and a completed event
// with statistics, as a batch of the ingest pipeline holds them.
func BenchmarkEncodeEvent(b *testing.B) {
	evs := benchEncodeEvents()
	for _, enc := range []struct {
		name string
		fn   func(*Event) ([]byte, error)
	}{{"fast", encodeEvent}, {"reflection", reflectEncode},
		{"message", EncodeMessage}, {"message-reflection", func(e *Event) ([]byte, error) { return json.Marshal(e) }}} {
		b.Run(enc.name, func(b *testing.B) {
			b.ReportAllocs()
			n, bytes := 0, 0
			for b.Loop() {
				v, err := enc.fn(&evs[n%len(evs)])
				if err != nil {
					b.Fatal(err)
				}
				n++
				bytes += len(v)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
			b.SetBytes(int64(bytes / max(n, 1)))
		})
	}
}

func benchEncodeEvents() []Event {
	k := JobKey{Project: "acme-project-042", Location: "US", JobID: "bquxjob_1a2b3c4d_0123456789a"}
	t := time.Date(2026, 11, 1, 12, 0, 0, 123456789, time.UTC)
	inserted := Event{
		ID: AuditEventID("projects/acme/logs/cloudaudit.googleapis.com%2Fdata_access", "abc123", 0), Kind: KindInserted,
		Job: k, Time: t, State: StateRunning,
		Facts: Facts{
			Principal: "user-0042@acme.example", JobType: JobTypeQuery, StatementType: "SELECT", Priority: "INTERACTIVE",
			Query:            "SELECT customer_id, SUM(amount) FROM `acme-project-042.sales.orders` " + strings.Repeat("WHERE x = 'y' ", 140),
			Labels:           map[string]string{"team": "team-7", "env": "prod"},
			Reservation:      "admin:US.res-07",
			ReferencedTables: []string{"acme-project-042.sales.orders", "acme-project-042.core.customers"},
			CreateTime:       t, StartTime: t,
		},
		Source: Source{Format: "v2", Method: "google.cloud.bigquery.v2.JobService.InsertJob", LogName: "projects/acme/logs/x", InsertID: "abc123"},
	}
	completed := Event{
		ID: AuditEventID("projects/acme/logs/cloudaudit.googleapis.com%2Fdata_access", "abc124", 0), Kind: KindCompleted,
		Job: k, Time: t.Add(4 * time.Second), State: StateDone,
		Facts: Facts{
			Principal: "user-0042@acme.example", JobType: JobTypeQuery, EndTime: t.Add(4 * time.Second),
			BytesProcessed: Int64(123456789), BytesBilled: Int64(124780544), SlotMs: Int64(45678), BillingTier: Int64(1),
			CacheHit: Bool(false), OutputRows: Int64(1000),
		},
		Source: Source{Format: "v2", Method: "google.cloud.bigquery.v2.JobService.InsertJob", LogName: "projects/acme/logs/x", InsertID: "abc124"},
	}
	return []Event{inserted, completed}
}

// BenchmarkDecodeEvent measures reading BenchmarkEncodeEvent's events back:
// their cell values, as a rebuild reads every running job's events, and
// their messages, as every projection reads the events topic; each by
// decodeEvent and UnmarshalMessage, which read them in place, and through
// the json package alone (-reflection) for comparison.
func BenchmarkDecodeEvent(b *testing.B) {
	var cells, messages [][]byte
	for _, e := range benchEncodeEvents() {
		v, err := encodeEvent(&e)
		if err != nil {
			b.Fatal(err)
		}
		m, err := EncodeMessage(&e)
		if err != nil {
			b.Fatal(err)
		}
		cells, messages = append(cells, v), append(messages, m)
	}
	for _, dec := range []struct {
		name   string
		values [][]byte
		fn     func([]byte) error
	}{
		{"cell", cells, func(v []byte) error { _, err := decodeEvent(v); return err }},
		{"cell-reflection", cells, func(v []byte) error { _, err := decodeEventReflect(v); return err }},
		{"message", messages, func(v []byte) error { _, err := UnmarshalMessage(v); return err }},
		{"message-reflection", messages, func(v []byte) error {
			var e Event
			return jsonv2.Unmarshal(v, &e, jsonv1.DefaultOptionsV1())
		}},
	} {
		b.Run(dec.name, func(b *testing.B) {
			b.ReportAllocs()
			n, bytes := 0, 0
			for b.Loop() {
				v := dec.values[n%len(dec.values)]
				if err := dec.fn(v); err != nil {
					b.Fatal(err)
				}
				n++
				bytes += len(v)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
			b.SetBytes(int64(bytes / max(n, 1)))
		})
	}
}
