package ingest

import (
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/bus"
)

func subscription(project, id, topic string) *pubsubpb.Subscription {
	return &pubsubpb.Subscription{
		Name:  "projects/" + project + "/subscriptions/" + id,
		Topic: "projects/" + project + "/topics/" + topic, AckDeadlineSeconds: 60,
	}
}

// checkOutcome checks what the pipeline made of a corpus: the log holds
// exactly the expected events, the dead-letter topic holds every malformed
// entry with its reason and nothing else, and every appended event was
// published on the events topic.
func checkOutcome(t *testing.T, h *harness, c *corpus) {
	t.Helper()
	if diff := cmp.Diff(c.wantEvents(), h.logged()); diff != "" {
		t.Errorf("event log mismatch after %s (-want +got):\n%s", c.summary(), diff)
	}
	dead := map[string]string{}
	for _, m := range h.drain(deadSub, time.Second, atLeast(len(c.malformed))) {
		reason := m.Attributes[bus.MetaReason]
		if reason == "" || m.Attributes[middleware.ReasonForPoisonedKey] == "" {
			t.Errorf("dead-lettered entry without a reason: attributes %v", m.Attributes)
		}
		if reason != "bad_envelope" && m.Attributes["logging.googleapis.com/timestamp"] == "" {
			t.Errorf("dead-lettered entry lost its original attributes: %v", m.Attributes)
		}
		dead[string(m.Data)] = reason
	}
	if diff := cmp.Diff(c.malformed, dead); diff != "" {
		t.Errorf("dead-letter topic mismatch (-want +got):\n%s", diff)
	}
	published := map[string]bool{}
	for _, m := range h.drain(eventsSub, time.Second, atLeastEvents(len(c.want))) {
		evs, err := events.UnmarshalMessages(m.Data)
		if err != nil {
			t.Fatalf("events topic holds a bad message: %v", err)
		}
		for _, e := range evs {
			published[e.ID] = true
		}
	}
	for id := range c.want {
		if !published[id] {
			t.Errorf("event %s is in the log but was never published on the events topic", id)
		}
	}
}

// TestPipelineMixedStream ingests over 2,000 entries of both formats, each
// delivered one to three times in shuffled order, with skippable and
// malformed entries among them.
func TestPipelineMixedStream(t *testing.T) {
	c := newCorpus(t, 2100, 7)
	h := newHarness(t, harnessOpts{pull: true})
	h.publish(c.deliveries)
	waitFor(t, 2*time.Minute, "every delivery to settle", func() bool { return h.settled() >= len(c.deliveries) })
	checkOutcome(t, h, c)
	if diff := cmp.Diff(c.outcomes(), h.outcomes()); diff != "" {
		t.Errorf("settled deliveries by outcome (-want +got):\n%s", diff)
	}
}

// TestPipelineBigtableOutage makes Bigtable fail for a while in the middle
// of the stream: entries are retried, handed back and redelivered, and in
// the end the log holds everything and nothing transient was dead-lettered.
func TestPipelineBigtableOutage(t *testing.T) {
	c := newCorpus(t, 600, 11)
	h := newHarness(t, harnessOpts{pull: true, appendTimeout: 300 * time.Millisecond, cfg: Config{
		Retry: bus.RetryConfig{MaxRetries: 2, InitialInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond}}})
	half := len(c.deliveries) / 2
	h.publish(c.deliveries[:half])
	h.faults.on.Store(true)
	h.publish(c.deliveries[half:])
	waitFor(t, time.Minute, "entries to be handed back during the outage", func() bool {
		return testutilCount(h.pipe.metrics.redelivered.WithLabelValues(intakePull)) >= 10
	})
	h.faults.on.Store(false)
	waitFor(t, 3*time.Minute, "every delivery to settle after the outage", func() bool { return h.settled() >= len(c.deliveries) })
	checkOutcome(t, h, c)
}
