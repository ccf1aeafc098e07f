package enrich_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/api/option"

	"github.com/bqobserver/bqobserver/enrich"
	"github.com/bqobserver/bqobserver/enrich/jobsapi"
	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/auditlog"
	"github.com/bqobserver/bqobserver/internal/simulation"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/projections/running"
)

// world is a simulated organization whose audit entries are decoded and
// appended to an event log (bttest, or the emulator with
// BIGTABLE_EMULATOR_HOST) and folded into the running-jobs projection, as
// ingest and the live feed do, and whose jobs API enrichment polls. Time
// is the simulation's virtual time: the test moves it.
type world struct {
	t    testing.TB
	org  *simulation.Org
	api  *simulation.JobsAPI
	url  string
	bt   *logtest.Bigtable
	log  *events.Log
	proj *running.Projection
	feed *feed
	// drop, if set, filters audit entries out, as a wrong sink would.
	drop func(e *simulation.Entry) bool
}

func newWorld(t testing.TB, cfg simulation.Config) *world {
	t.Helper()
	return newWorldOn(t, cfg, logtest.NewBigtable(t))
}

// newWorldOn is newWorld on a given Bigtable.
func newWorldOn(t testing.TB, cfg simulation.Config, bt *logtest.Bigtable) *world {
	t.Helper()
	org, err := simulation.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(org.JobsAPI())
	t.Cleanup(srv.Close)
	l, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table})
	if err != nil {
		t.Fatal(err)
	}
	proj, err := running.New(running.Config{Now: org.Now}, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := proj.Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	proj.MarkLive()
	return &world{t: t, org: org, api: org.JobsAPI(), url: srv.URL + "/bigquery/v2/", bt: bt, log: l, proj: proj,
		feed: &feed{log: l, proj: proj}}
}

// client is a jobs API client of the world's simulation, fast to retry.
// A transport, if given, carries its calls.
func (w *world) client(cfg jobsapi.Config, transport http.RoundTripper) *jobsapi.Client {
	w.t.Helper()
	cfg.Endpoint = w.url
	if cfg.Backoff == 0 {
		cfg.Backoff, cfg.MaxBackoff = time.Millisecond, 4*time.Millisecond
	}
	if cfg.QPS == 0 {
		cfg.QPS = 10000
	}
	opts := []option.ClientOption{option.WithoutAuthentication()}
	if transport != nil {
		opts = []option.ClientOption{option.WithHTTPClient(&http.Client{Transport: transport})}
	}
	c, err := jobsapi.New(w.t.Context(), cfg, nil, opts...)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// enricher is an enricher of the world on the simulation's clock.
func (w *world) enricher(cfg enrich.Config, d enrich.Deps) *enrich.Enricher {
	w.t.Helper()
	if cfg.Now == nil {
		cfg.Now = w.org.Now
	}
	if d.API == nil {
		d.API = w.client(jobsapi.Config{}, nil)
	}
	if d.Jobs == nil {
		d.Jobs = w.proj
	}
	if d.Appender == nil {
		d.Appender = w.feed
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
	}
	e, err := enrich.New(cfg, d)
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

// step runs the simulation for d and feeds every entry delivered.
func (w *world) step(d time.Duration) {
	w.t.Helper()
	var evs []events.Event
	for e := range w.org.Generate(d) {
		if w.drop != nil && w.drop(&e) {
			continue
		}
		got, err := auditlog.Decode(e.Data)
		var skip *auditlog.SkipError
		if err != nil && !errors.As(err, &skip) {
			w.t.Fatalf("decoding a simulated entry: %v", err)
		}
		evs = append(evs, got...)
	}
	if err := w.feed.write(w.t.Context(), evs); err != nil {
		w.t.Fatal(err)
	}
}

// feed appends events to the log and folds them into the projection, as
// the appender and the projection's consumer do, and keeps the events
// enrichment appended.
type feed struct {
	log  *events.Log
	proj *running.Projection

	mu       sync.Mutex
	enriched []events.Event
	fail     int // how many of the next appends fail
}

var errAppend = errors.New("appending failed (injected)")

// Append is enrichment's append.
func (f *feed) Append(ctx context.Context, evs []events.Event) error {
	f.mu.Lock()
	if f.fail > 0 {
		f.fail--
		f.mu.Unlock()
		return errAppend
	}
	f.mu.Unlock()
	if err := f.write(ctx, evs); err != nil {
		return err
	}
	f.mu.Lock()
	f.enriched = append(f.enriched, evs...)
	f.mu.Unlock()
	return nil
}

func (f *feed) write(ctx context.Context, evs []events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if err := f.log.Append(ctx, evs); err != nil {
		return err
	}
	return f.proj.Apply(ctx, evs...)
}

// appendedByEnrichment returns the events enrichment appended so far.
func (f *feed) appendedByEnrichment() []events.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.enriched)
}
