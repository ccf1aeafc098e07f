package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/internal/testutil/pubsubtest"
	"github.com/bqobserver/bqobserver/schema"
)

func envelope(t testing.TB, data []byte, id int) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"message": map[string]any{"data": base64.StdEncoding.EncodeToString(data), "messageId": strconv.Itoa(id),
			"attributes": map[string]string{"logging.googleapis.com/timestamp": "2026-11-25T10:00:00Z"}},
		"subscription": "projects/p/subscriptions/bqobserver-push",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func push(t testing.TB, h http.Handler, method string, body []byte) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/push/audit", bytes.NewReader(body)))
	return rec.Code
}

// TestPushIntake drives the push intake directly: every answer the
// endpoint gives, and what lands in the log and on the dead-letter topic.
func TestPushIntake(t *testing.T) {
	c := newCorpus(t, 120, 3)
	h := newHarness(t, harnessOpts{appendTimeout: 300 * time.Millisecond, cfg: Config{
		Retry: bus.RetryConfig{MaxRetries: 2, InitialInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond}}})
	ph := h.pipe.PushHandler()
	for i, d := range c.deliveries {
		if got := push(t, ph, http.MethodPost, envelope(t, d, i)); got != http.StatusNoContent {
			t.Fatalf("push of delivery %d answered %d, want 204", i, got)
		}
	}
	badEnvelope := []byte(`{"message":{"data":"!!! not base64 !!!"}}`)
	if got := push(t, ph, http.MethodPost, badEnvelope); got != http.StatusNoContent {
		t.Errorf("push of a bad envelope answered %d, want 204 (dead-lettered)", got)
	}
	c.malformed[string(badEnvelope)] = "bad_envelope"
	checkOutcome(t, h, c)
	job := envelope(t, c.jobEntry(t), 1)

	tests := []struct {
		name   string
		method string
		body   []byte
		setup  func() func()
		want   int
	}{
		{"wrong method", http.MethodGet, nil, nil, http.StatusMethodNotAllowed},
		{"too many in flight", http.MethodPost, job, func() func() {
			for range cap(h.pipe.push) {
				h.pipe.push <- struct{}{}
			}
			return func() {
				for range cap(h.pipe.push) {
					<-h.pipe.push
				}
			}
		}, http.StatusTooManyRequests},
		{"bigtable unavailable", http.MethodPost, job, func() func() {
			h.faults.on.Store(true)
			return func() { h.faults.on.Store(false) }
		}, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				defer tt.setup()()
			}
			if got := push(t, ph, tt.method, tt.body); got != tt.want {
				t.Errorf("answered %d, want %d", got, tt.want)
			}
		})
	}
	// A declared length past any Pub/Sub push is refused before the body
	// is read, up to the largest a header can declare (ContentLength+1
	// once wrapped, and the buffer's size with it).
	for _, declared := range []int64{pushCeiling + 1, math.MaxInt64} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/push/audit", bytes.NewReader(job))
		r.ContentLength = declared
		ph.ServeHTTP(rec, r)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("a push declaring %d bytes answered %d, want 413", declared, rec.Code)
		}
	}
	if dead := h.drain(deadSub, time.Second, atLeast(0)); len(dead) != 0 {
		t.Errorf("a transient failure or a refused request was dead-lettered: %d messages", len(dead))
	}
}

// TestPushFromEmulator has the real Pub/Sub emulator push the stream to the
// push intake over HTTP.
func TestPushFromEmulator(t *testing.T) {
	pubsubtest.RequireEmulator(t)
	c := newCorpus(t, 300, 5)
	h := newHarness(t, harnessOpts{})
	mux := http.NewServeMux()
	mux.Handle("/push/audit", h.pipe.PushHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	top := schema.PubSub{Project: h.ps.Project, AuditTopic: auditTopic, EventsTopic: eventsTopic, DeadLetterTopic: deadTopic,
		IngestSubscription: ingestSub, DeadLetterSubscription: deadSub, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
		PushSubscription: "bqobserver-push", PushEndpoint: srv.URL + "/push/audit"}
	if err := schema.ApplyPubSub(t.Context(), h.ps.Client, top); err != nil {
		t.Fatal(err)
	}
	h.publish(c.deliveries)
	waitFor(t, 2*time.Minute, "every push to settle", func() bool { return h.settled() >= len(c.deliveries) })
	checkOutcome(t, h, c)
}

// TestPushTimeout checks that a push with Bigtable failing is answered 503
// with Retry-After, as a problem document, once PushTimeout has passed,
// however many retries the policy would still allow.
func TestPushTimeout(t *testing.T) {
	const timeout = 400 * time.Millisecond
	h := newHarness(t, harnessOpts{appendTimeout: time.Minute, cfg: Config{PushTimeout: timeout,
		Retry: bus.RetryConfig{MaxRetries: 1000, InitialInterval: 50 * time.Millisecond, MaxInterval: 100 * time.Millisecond}}})
	c := newCorpus(t, 20, 5)
	h.faults.on.Store(true)
	t.Cleanup(func() { h.faults.on.Store(false) })
	rec := httptest.NewRecorder()
	start := time.Now()
	h.pipe.PushHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/push/audit", bytes.NewReader(envelope(t, c.jobEntry(t), 1))))
	took := time.Since(start)
	if took < timeout || took > timeout+5*time.Second {
		t.Errorf("answered after %s, want shortly after the %s timeout", took, timeout)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	got := []any{rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("Content-Type"), body["detail"]}
	want := []any{http.StatusServiceUnavailable, "5", "application/problem+json",
		"the entry could not be ingested within the push timeout; push it again later"}
	if !cmp.Equal(got, want) {
		t.Errorf("answer %v, want %v", got, want)
	}
}

// failingPublisher refuses every publish, as a Pub/Sub that does not answer.
type failingPublisher struct{}

func (failingPublisher) Publish(string, ...*message.Message) error {
	return errors.New("pubsub: unavailable")
}
func (failingPublisher) Close() error { return nil }

// TestPushBadEnvelopeCounted: a push body that is not an envelope is
// received and settled like every delivery: dead-lettered when the
// dead-letter topic takes it, handed back (503, received and handed back
// once each) when it does not, and timed either way.
func TestPushBadEnvelopeCounted(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ph := h.pipe.PushHandler()
	m := h.pipe.metrics
	count := func() (received, handedBack, deadLettered, timed float64) {
		var hist dto.Metric
		if err := m.handler.WithLabelValues(outcomeHandedBack).(prometheus.Histogram).Write(&hist); err != nil {
			t.Fatal(err)
		}
		var dl dto.Metric
		if err := m.handler.WithLabelValues(outcomeDeadLettered).(prometheus.Histogram).Write(&dl); err != nil {
			t.Fatal(err)
		}
		return testutil.ToFloat64(m.received.WithLabelValues(intakePush)), testutil.ToFloat64(m.redelivered.WithLabelValues(intakePush)),
			testutil.ToFloat64(m.deadLettered.WithLabelValues("bad_envelope")), float64(hist.GetHistogram().GetSampleCount() + dl.GetHistogram().GetSampleCount())
	}
	bad := []byte(`{"message":{"data":"!!! not base64 !!!"}}`)
	if got := push(t, ph, http.MethodPost, bad); got != http.StatusNoContent {
		t.Fatalf("push of a bad envelope answered %d, want 204", got)
	}
	if r, hb, dl, timed := count(); r != 1 || hb != 0 || dl != 1 || timed != 1 {
		t.Errorf("after a dead-lettered bad envelope: received %g, handed back %g, dead-lettered %g, timed %g; want 1, 0, 1, 1", r, hb, dl, timed)
	}
	h.pipe.pub = failingPublisher{}
	if got := push(t, ph, http.MethodPost, bad); got != http.StatusServiceUnavailable {
		t.Fatalf("push of a bad envelope with the dead-letter topic unavailable answered %d, want 503", got)
	}
	if r, hb, dl, timed := count(); r != 2 || hb != 1 || dl != 1 || timed != 2 {
		t.Errorf("after a bad envelope handed back: received %g, handed back %g, dead-lettered %g, timed %g; want 2, 1, 1, 2", r, hb, dl, timed)
	}
}
