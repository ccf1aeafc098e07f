package auditlog

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/reftest"
)

// outcome is the part of a decoded entry the conformance table pins down:
// the event's kind, job, state and a few key facts, or the skip or error
// reason.
type outcome struct {
	Kind      events.Kind
	Job       string // project:location.job_id
	Time      time.Time
	State     events.State
	JobType   string
	Statement string
	SlotMs    *int64
	Billed    *int64
	Dest      string
	ErrCode   string
	Skip      SkipReason
	Err       ErrorReason
}

func outcomeOf(evs []events.Event, err error) outcome {
	var skipErr *SkipError
	var decErr *Error
	switch {
	case errors.As(err, &skipErr):
		return outcome{Skip: skipErr.Reason}
	case errors.As(err, &decErr):
		return outcome{Err: decErr.Reason}
	case err != nil || len(evs) != 1:
		return outcome{Err: "unexpected"}
	}
	e := evs[0]
	o := outcome{Kind: e.Kind, Job: e.Job.String(), Time: e.Time, State: e.State, JobType: e.JobType, Statement: e.StatementType,
		SlotMs: e.SlotMs, Billed: e.BytesBilled, Dest: e.DestinationTable}
	if e.Error != nil {
		o.ErrCode = e.Error.Code
	}
	return o
}

var i64 = events.Int64

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// conformance is the expectation for every file in the reference folder,
// one outcome per entry (the array file has six).
//
// Decisions for the files that are not raw Cloud Logging output:
//   - protoPayload-only files (three DataHub, one observability-hub): decoded
//     as an entry with an empty envelope; the time falls back to the job's
//     end time and the id to a hash of the bytes.
//   - Panther-normalised files (lower-cased keys, "@type" renamed
//     at_sign_type, "2023-03-28 17:37:02.096" times): decoded; keys match
//     case-insensitively and zone-less times are read as UTC. The v1 one is
//     a dry run and is skipped as such.
//   - the InsertJob entry stripped of its metadata: skipped, no_payload.
//   - the 6-entry array: split with Split, one outcome per element.
var conformance = map[string][]outcome{
	"v1-jobcompleted-query-createschema-protopayloadonly-datahub.json": {{
		Kind: events.KindCompleted, Job: "harshal-playground-306419:US.bquxjob_5565e039_179ab1fda9c", Time: at("2021-05-27T00:01:02.928Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "CREATE_SCHEMA"}},
	"v1-jobcompleted-query-ctas-protopayloadonly-datahub.json": {{
		Kind: events.KindCompleted, Job: "harshal-playground-306419:US.bquxjob_48d74e9b_179ab204cca", Time: at("2021-05-27T00:01:33.811Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "CREATE_TABLE_AS_SELECT", SlotMs: i64(11372), Billed: i64(315621376),
		Dest: "harshal-playground-306419.test_schema.austin311_derived"}},
	"v1-jobcompleted-query-ctas-reservation-protopayloadonly-observabilityhub.json": {{
		Kind: events.KindCompleted, Job: "observability-hub-dev:US.bqjob_r5bf5dfa96120dc26_000001a000b0cfae_1", Time: at("2026-08-14T14:33:05.199Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "CREATE_TABLE_AS_SELECT", SlotMs: i64(1426), Billed: i64(10485760),
		Dest: "observability-hub-dev.TRUSTED.ga4_sessions"}},
	"v1-jobcompleted-query-select-amundsen.json": {{
		Kind: events.KindCompleted, Job: "your-project-here:US.bquxjob_758c08d1_16a96889839", Time: at("2019-05-08T08:23:00.061Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "SELECT", SlotMs: i64(452), Billed: i64(10485760),
		Dest: "your-project-here._07147a061ddfd6dcaf246cfc5e858a0ccefa7080.anon1dd83635c62357091e55a5f76fb62d7deebcfa4c"}},
	"v1-jobcompleted-query-select-bqnotifier.json": {{
		Kind: events.KindCompleted, Job: "test-project:US.12345", Time: at("2019-03-11T21:26:58.582Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "SELECT", Dest: "test-project.12345.12345"}},
	"v1-jobcompleted-query-select-eventarcsamples.json": {{
		Kind: events.KindCompleted, Job: "events-atamel:US.bquxjob_2b0b1636_179d67e62f1", Time: at("2021-06-04T10:08:20.845676Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "SELECT", SlotMs: i64(223064), Billed: i64(1450180608),
		Dest: "events-atamel._f87b8ef2159c9de07fde5343d8b454f5badefee7.anona1b87ad14905f207fb105acc11a7564084610c95"}},
	"v1-jobcompleted-query-select-googlecloudevents.json": {{
		Kind: events.KindCompleted, Job: "test-project:US.bqjob_r3ac45813612fa2d6_0000017d591922c9_1", Time: at("2021-11-25T21:56:00.276607Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "SELECT", SlotMs: i64(46), Billed: i64(1450180608),
		Dest: "test-project._1f5a368b27df6124588f6733820599593e869a8a.anon1f50c147_3e76_44d8_a863_44a8ab3deb61"}},
	"v1-jobcompleted-query-select-protopayloadonly-datahub.json": {{
		Kind: events.KindCompleted, Job: "harshal-playground-306419:US.bquxjob_5ec753e5_179ab1e2c48", Time: at("2021-05-26T23:59:13.297Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "SELECT", SlotMs: i64(99), Billed: i64(315621376),
		Dest: "harshal-playground-306419._d60e97aec7f471046a960419adb6d44e98300db7.anon754acac2e85f5924c01fb144d8153af064a5a259"}},
	"v1-jobinsert-query-dryrun-statuserror-panthernormalized.json": {{Skip: SkipDryRun}},
	"v2-insertjob-without-metadata-edgecase-bqdatalineage.json":    {{Skip: SkipNoPayload}},
	"v2-jobchange-done-copy-bqdatalineage.json": {{
		Kind: events.KindCompleted, Job: "helical-client-276602:US.bquxjob_49c5a65b_171f28a27d4", Time: at("2020-05-08T04:27:54.116Z"), State: events.StateDone,
		JobType: "COPY", Dest: "helical-client-276602.airports.airports_asia"}},
	"v2-jobchange-done-copy-metaphor.json": {{
		Kind: events.KindCompleted, Job: "metaphor-data:us-central1.bquxjob_616d0f38_17e9c8d8782", Time: at("2022-01-27T17:20:29.105490Z"), State: events.StateDone,
		JobType: "COPY", Dest: "metaphor-data.test.yi_tests2"}},
	"v2-jobchange-done-load-gcs-parquet-bqdatalineage.json": {{
		Kind: events.KindCompleted, Job: "bq-lineage-demo:US.bquxjob_718728d9_171f059e94d", Time: at("2020-05-07T18:16:03.906Z"), State: events.StateDone,
		JobType: "LOAD", SlotMs: i64(1024), Dest: "bq-lineage-demo.MyDataSet.UserData"}},
	"v2-jobchange-done-load-localfile-bqcli-bqdatalineage.json": {{
		Kind: events.KindCompleted, Job: "master-streamer-294504:US.bqjob_r59dd7e512a820db_000001758dc15eff_1", Time: at("2020-11-03T10:57:45.837667Z"), State: events.StateDone,
		JobType: "LOAD", SlotMs: i64(147), Dest: "master-streamer-294504.MyDataSet.MockPiiTable"}},
	"v2-jobchange-done-query-ctas-bqdatalineage.json": {{
		Kind: events.KindCompleted, Job: "myproject:US.bquxjob_671ec7b5_171efefdb82", Time: at("2020-05-07T16:23:21.643Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "CREATE_TABLE_AS_SELECT", SlotMs: i64(100138), Billed: i64(606076928),
		Dest: "myproject.demo.test_partition"}},
	"v2-jobchange-done-query-ctas-partitioned-noreftables-bqdatalineage.json": {{
		Kind: events.KindCompleted, Job: "myproject:US.bquxjob_264a99a3_171ef37d030", Time: at("2020-05-07T12:59:30.463Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "CREATE_TABLE_AS_SELECT", SlotMs: i64(154), Dest: "myproject.demo.test_partition"}},
	"v2-jobchange-done-query-dml-delete-panthernormalized.json": {{
		Kind: events.KindCompleted, Job: "gcp-project1:US.abcdefghijklmnopqrstuvwz", Time: at("2023-03-28T18:37:06.079Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "DELETE", Dest: "gcp-project1.test1.newtable"}},
	"v2-jobchange-done-query-droptable-panthernormalized.json": {{
		Kind: events.KindCompleted, Job: "gcp-project1:US.abcdefghijklmnopqrstuvwz", Time: at("2023-03-28T18:37:06.079Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "DROP_TABLE", Dest: "gcp-project1.test1.newtable"}},
	"v2-jobchange-done-query-failed-syntaxerror-bqdatalineage.json": {{
		Kind: events.KindCompleted, Job: "bq-lineage-demo:US.bquxjob_5d2315bc_171f0269909", Time: at("2020-05-07T17:20:02.448Z"), State: events.StateDone,
		JobType: "QUERY", ErrCode: "3"}},
	"v2-jobchange-done-query-insert-querytruncated-pythonclient-metaphor.json": {{
		Kind: events.KindCompleted, Job: "metaphor-data:US.7526798f-8072-446d-bdf1-ac1acb4d8591", Time: at("2022-01-27T17:17:12.636773Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "SELECT", SlotMs: i64(538), Billed: i64(10485760), Dest: "metaphor-data.test.yi_tests"}},
	"v2-jobchange-done-query-select-anondest-bqdatalineage.json": {{
		Kind: events.KindCompleted, Job: "helical-client-276602:US.bquxjob_48ad95ff_171f28966f3", Time: at("2020-05-08T04:27:28.275Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "SELECT", SlotMs: i64(87), Billed: i64(10485760),
		Dest: "helical-client-276602._68f0ba0f164ce5d88eda8e65409d77a4365c4b84.anon4656e82b3ec523a4acf2a3d231ba8db110c81f21"}},
	"v2-jobchange-done-query-select-bqdatalineage.json": {{
		Kind: events.KindCompleted, Job: "myproject:US.bquxjob_4103dfda_17173ccc9a4", Time: at("2020-04-13T13:57:08.14Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "SELECT", SlotMs: i64(3888), Billed: i64(31206670336), Dest: "myproject.demo.sample_table"}},
	"v2-jobchange-done-query-select-insertjob-metaphor.json": {{
		Kind: events.KindCompleted, Job: "metaphor-data:us-central1.bquxjob_70ddc06_17f574eca64", Time: at("2022-03-04T23:40:56.595154Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "SELECT", SlotMs: i64(36), Billed: i64(10485760),
		Dest: "metaphor-data.3198487640cceeb8e7d28d7c0f23e9f51ed519b1.anon66e97db94a52893f2f3ee8e5c3d420963d37c90c"}},
	"v2-jobchange-done-query-select-jobsquery-odbc-views-metaphor.json": {{
		Kind: events.KindCompleted, Job: "metaphor-data:us-central1.job_BSqXkGDLhaGKKQDJtesGJt3gjwG5", Time: at("2022-03-07T10:29:01.625893Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "SELECT", SlotMs: i64(90), Billed: i64(10485760),
		Dest: "metaphor-data.7920ed6988b5b158b0bcde435ea325d866993be9.anon8d8bdc7387b1ebe499e35632b1dd94a6232badf3"}},
	"v2-jobchange-done-query-select-largescan-panthernormalized.json": {{
		Kind: events.KindCompleted, Job: "gcp-project1:US.abcdefg_hijklmnop_1234567abcd", Time: at("2023-03-28T17:37:02.096Z"), State: events.StateDone,
		JobType: "QUERY", Statement: "SELECT", SlotMs: i64(259581), Billed: i64(3097493504),
		Dest: "gcp-project1._c2b49f742788f188022fcec1f1622e7404b40ce5.anondea8e77183dcdf1cf93a47b5003036409a525808207450ab80db17fcc8cdcf53"}},
	"v2-jobinsertion-query-select-running-bqdatalineage.json": {{
		Kind: events.KindInserted, Job: "myproject:US.bquxjob_4103dfda_17173ccc9a4", Time: at("2020-04-13T13:57:06.892Z"), State: events.StateRunning,
		JobType: "QUERY", Statement: "SELECT", Dest: "myproject.demo.sample_table"}},
	"v2-sequence-array-6-entries-query-with-destination-bqdatalineage.json": {
		{Skip: SkipNotJob}, // tableDataRead, reason JOB
		{Skip: SkipNotJob}, // tableDataRead, GetQueryResults
		{Kind: events.KindInserted, Job: "myproject:US.bquxjob_4103dfda_17173ccc9a4", Time: at("2020-04-13T13:57:06.892Z"), State: events.StateRunning,
			JobType: "QUERY", Statement: "SELECT", Dest: "myproject.demo.sample_table"},
		{Kind: events.KindCompleted, Job: "myproject:US.bquxjob_4103dfda_17173ccc9a4", Time: at("2020-04-13T13:57:08.14Z"), State: events.StateDone,
			JobType: "QUERY", Statement: "SELECT", SlotMs: i64(3888), Billed: i64(31206670336), Dest: "myproject.demo.sample_table"},
		{Skip: SkipNotJob}, // tableDataChange
		{Skip: SkipNotJob}, // tableChange
	},
	"v2-tabledataread-getqueryresults-nonjob-bqdatalineage.json": {{Skip: SkipNotJob}},
	"v2-tabledataread-insertjob-nonjob-bqdatalineage.json":       {{Skip: SkipNotJob}},
	"v2-tabledeletion-deletetable-nonjob-bqdatalineage.json":     {{Skip: SkipNotJob}},
}

func TestConformance(t *testing.T) {
	dir := reftest.AuditLogs(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, file := range files {
		base := filepath.Base(file)
		seen[base] = true
		want, ok := conformance[base]
		if !ok {
			t.Errorf("%s is not in the conformance table: add its expected outcome", base)
			continue
		}
		t.Run(base, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			ins, err := Split(base, data)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			var got []outcome
			for _, in := range ins {
				got = append(got, outcomeOf(Decode(in.Data)))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("outcomes mismatch (-want +got):\n%s", diff)
			}
		})
	}
	checkTableComplete(t, dir, seen)
}

// checkTableComplete fails for table rows whose file is not in dir, so the
// table cannot drift from the folder unnoticed.
func checkTableComplete(t *testing.T, dir string, seen map[string]bool) {
	t.Helper()
	var missing []string
	for name := range conformance {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		t.Errorf("the conformance table lists %s, which is not in %s", name, dir)
	}
}
