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
// time in 9999, every pending work-unit count negative.
type implausibleAPI struct{}

var implausibleValues = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`"totalSlotMs":"\d+"`), `"totalSlotMs":"9223372036854775807"`},
	{regexp.MustCompile(`"startTime":"\d+"`), `"startTime":"253370764800000"`},
	{regexp.MustCompile(`"pendingUnits":"\d+"`), `"pendingUnits":"-3"`},
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
// the values dropped and counted, so the log holds none of them.
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
		EnrichmentEvents bool // enrichment appended events at all
		Implausible      []string
		Dropped          map[string]bool
	}
	got := outcome{Dropped: map[string]bool{}}
	for k := range through.jobs {
		evs, err := w.log.JobEvents(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Source.Format != "api" {
				continue
			}
			got.EnrichmentEvents = true
			if d := ev.DropImplausible(); len(d) > 0 {
				got.Implausible = append(got.Implausible, ev.ID)
			}
		}
	}
	for _, d := range []struct{ field, reason string }{
		{"slot_ms", events.ImplausibleTooLarge}, {"start_time", events.ImplausibleFuture}, {"pending_units", events.ImplausibleNegative},
	} {
		got.Dropped[d.field+"/"+d.reason] = droppedCount(t, reg, d.field, d.reason) > 0
	}
	want := outcome{EnrichmentEvents: true, Dropped: map[string]bool{
		"slot_ms/too_large": true, "start_time/in_the_future": true, "pending_units/negative": true}}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("what enrichment left in the log (-want +got):\n%s", diff)
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
