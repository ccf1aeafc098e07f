package enrich_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"sync"
	"testing"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	gocmp "github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/enrich"
	"github.com/bqobserver/bqobserver/enrich/jobsapi"
	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/internal/testutil/pubsubtest"
)

// implausibleAPI carries the jobs API's answers and puts into them values
// that cannot be true: every slot-ms at the int64 maximum, every start
// and end time in 9999, every creation time in 1970, every pending
// work-unit count and byte count negative; its query stages read -1
// records and start in 9999. Its active and completed work
// units never change, so that a poll of a running job sees nothing new
// but what its plan has begun.
type implausibleAPI struct{}

var implausibleValues = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`"totalSlotMs":"\d+"`), `"totalSlotMs":"9223372036854775807"`},
	{regexp.MustCompile(`"startTime":"\d+"`), `"startTime":"253370764800000"`},
	{regexp.MustCompile(`"endTime":"\d+"`), `"endTime":"253370764800000"`},
	{regexp.MustCompile(`"creationTime":"\d+"`), `"creationTime":"1"`},
	{regexp.MustCompile(`"pendingUnits":"\d+"`), `"pendingUnits":"-3"`},
	{regexp.MustCompile(`"totalBytesProcessed":"\d+"`), `"totalBytesProcessed":"-5"`},
	{regexp.MustCompile(`"activeUnits":"\d+"`), `"activeUnits":"7"`},
	{regexp.MustCompile(`"completedUnits":"\d+"`), `"completedUnits":"9"`},
	{regexp.MustCompile(`"recordsRead":"\d+"`), `"recordsRead":"-1"`},
	{regexp.MustCompile(`"startMs":"\d+"`), `"startMs":"253370764800000"`},
}

func (implausibleAPI) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	for _, v := range implausibleValues {
		body = v.re.ReplaceAll(body, []byte(v.with))
	}
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// throughAppender is enrichment's append through the service's one
// appender (to the log and the events topic), then into the projection as
// its live feed would; it keeps the keys of the jobs enrichment wrote of.
type throughAppender struct {
	app  *bus.Appender
	proj interface {
		Apply(context.Context, ...events.Event) error
	}
	mu   sync.Mutex
	jobs map[events.JobKey]bool
}

func (a *throughAppender) Append(ctx context.Context, evs []events.Event) error {
	if err := a.app.Append(ctx, evs); err != nil {
		return err
	}
	a.mu.Lock()
	for _, e := range evs {
		a.jobs[e.Job] = true
	}
	a.mu.Unlock()
	return a.proj.Apply(ctx, evs...)
}

// TestImplausibleAPIValuesDropped polls a jobs API whose statistics and
// times cannot be true. Enrichment appends through the one appender, which
// applies the plausibility rule to every writer: the events are kept and
// the values dropped and counted, so the log holds none of them. An
// implausible creation or end time does not stop the events of a poll:
// the events it would have timed take the moment the job was observed,
// and jobs are still discovered and reconciled. A value the rule drops is
// not news at every poll: no progress event repeats what the log already
// keeps of its job.
func TestImplausibleAPIValuesDropped(t *testing.T) {
	w := newWorld(t, busyOrg(21))
	ps := pubsubtest.New(t)
	if _, err := ps.Client.TopicAdminClient.CreateTopic(t.Context(), &pubsubpb.Topic{Name: "projects/" + ps.Project + "/topics/events"}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	app, err := bus.NewAppender(bus.AppenderConfig{Topic: "events"}, w.log, ps.Client, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close(context.Background()) })
	through := &throughAppender{app: app, proj: w.proj, jobs: map[events.JobKey]bool{}}
	e := w.enricher(enrich.Config{}, enrich.Deps{API: w.client(jobsapi.Config{}, implausibleAPI{}), Appender: through})
	warm(w, e, 20)

	type outcome struct {
		EnrichmentEvents bool            // enrichment appended events at all
		Kinds            map[string]bool // the kinds it appended
		Implausible      []string
		Repeated         []string // progress events that tell nothing the one before told
		Dropped          map[string]bool
	}
	got := outcome{Kinds: map[string]bool{}, Dropped: map[string]bool{}}
	for k := range through.jobs {
		evs, err := w.log.JobEvents(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		var last *events.Event // the job's last progress event
		for _, ev := range evs {
			if ev.Source.Format != "api" {
				continue
			}
			got.EnrichmentEvents = true
			got.Kinds[string(ev.Kind)] = true
			if d := ev.DropImplausible(); len(d) > 0 {
				got.Implausible = append(got.Implausible, ev.ID)
			}
			if ev.Kind != events.KindProgress {
				continue
			}
			if last != nil && last.State == ev.State && gocmp.Equal(last.Facts, ev.Facts) {
				got.Repeated = append(got.Repeated, ev.ID)
			}
			last = &ev
		}
	}
	for _, d := range []struct{ field, reason string }{
		{"slot_ms", events.ImplausibleTooLarge}, {"start_time", events.ImplausibleFuture}, {"pending_units", events.ImplausibleNegative},
		{"bytes_processed", events.ImplausibleNegative}, {"create_time", events.ImplausibleTooEarly}, {"end_time", events.ImplausibleFuture},
	} {
		got.Dropped[d.field+"/"+d.reason] = droppedCount(t, reg, d.field, d.reason) > 0
	}
	want := outcome{EnrichmentEvents: true,
		Kinds: map[string]bool{string(events.KindInserted): true, string(events.KindProgress): true, string(events.KindReconciled): true},
		Dropped: map[string]bool{"slot_ms/too_large": true, "start_time/in_the_future": true, "pending_units/negative": true,
			"bytes_processed/negative": true, "create_time/too_early": true, "end_time/in_the_future": true}}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("what enrichment left in the log (-want +got):\n%s", diff)
	}

	// The running queries' live details leave the same values out: their
	// stages' records read and start times, and every timeline sample (each
	// has a negative pending count). A stage that has read nothing yet has
	// no records read in the API's answer, which reads as 0; one that has
	// read some has -1 here.
	queries, leftOut := 0, 0
	for _, jobs := range w.proj.OpenJobs(func(string) bool { return true }) {
		for _, j := range jobs {
			if j.State != events.StateRunning || j.JobType != events.JobTypeQuery || j.StatementType == "SCRIPT" {
				continue
			}
			queries++
			l, err := e.Live(t.Context(), j.Key)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range l.Stages {
				if st.RecordsRead == nil {
					leftOut++
				}
				if st.RecordsRead != nil && *st.RecordsRead != 0 || !st.StartTime.IsZero() || st.SlotMs == nil {
					t.Errorf("%s: live stage %d: records read %d, start %v, slot-ms %d; want the implausible records read and start left out, the slot-ms kept",
						j.Key, st.ID, deref(st.RecordsRead), st.StartTime, deref(st.SlotMs))
				}
			}
			if len(l.Timeline) != 0 {
				t.Errorf("%s: live timeline %+v, want every sample left out", j.Key, l.Timeline)
			}
		}
	}
	if queries == 0 || leftOut == 0 {
		t.Errorf("%d running queries, %d stages with their records read left out: the test needs stages that have read records", queries, leftOut)
	}
}

// droppedCount reads the appender's count of dropped values of a field
// for a reason.
func droppedCount(t *testing.T, reg *prometheus.Registry, field, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "bqobserver_appender_dropped_values_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["field"] == field && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
