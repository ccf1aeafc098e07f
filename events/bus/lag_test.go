package bus

import (
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// TestLag follows messages through a handler that holds them: Behind is
// the age of the oldest one held, then, with none held, the lag of the last
// one settled until LagHold has passed; each settled message is observed
// once, from its publish time.
func TestLag(t *testing.T) {
	now := time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	l, err := NewLag("test-handler", reg)
	if err != nil {
		t.Fatal(err)
	}
	l.now = func() time.Time { return now }
	release := map[string]chan struct{}{}
	h := l.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		<-release[msg.UUID]
		return nil, nil
	})
	msgs := map[string]*message.Message{}
	for id, age := range map[string]time.Duration{"old": 5 * time.Second, "new": 2 * time.Second, "unstamped": 0} {
		msgs[id] = message.NewMessage(id, nil)
		if age > 0 {
			msgs[id].Metadata.Set(MetaPublished, now.Add(-age).Format(time.RFC3339Nano))
		}
		release[id] = make(chan struct{})
	}
	done := map[string]chan struct{}{}
	for id, m := range msgs {
		finished := make(chan struct{})
		done[id] = finished
		go func() {
			defer close(finished)
			h(m)
		}()
	}
	waitUntil(t, "both stamped messages to be held", func() bool { return l.Behind(now) == 5*time.Second })
	steps := []struct {
		settle string
		want   time.Duration
	}{
		{"unstamped", 5 * time.Second},
		{"old", 2 * time.Second},
		{"new", 2 * time.Second}, // the last settled message's lag stands in
	}
	for _, s := range steps {
		close(release[s.settle])
		<-done[s.settle]
		if got := l.Behind(now); got != s.want {
			t.Errorf("after %s settled: Behind = %s; want %s", s.settle, got, s.want)
		}
	}
	if got := l.Behind(now.Add(LagHold)); got != 2*time.Second {
		t.Errorf("Behind at the end of the hold = %s; want 2s", got)
	}
	if got := l.Behind(now.Add(LagHold + time.Millisecond)); got != 0 {
		t.Errorf("Behind after the hold = %s; want 0", got)
	}
	count, sum := lagStats(t, reg)
	if count != 2 || sum != 7 {
		t.Errorf("lag histogram: %d messages, %gs in all; want 2 and 7s (5s and 2s; the unstamped one is not followed)", count, sum)
	}
}

// TestUnmarshalerPublishTime checks that a received message carries its
// Pub/Sub publish time, and one without a publish time carries none.
func TestUnmarshalerPublishTime(t *testing.T) {
	published := time.Date(2025, 3, 3, 8, 0, 0, 123456789, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		in   *pubsub.Message
		want time.Time
		ok   bool
	}{
		{"stamped", &pubsub.Message{ID: "m1", Data: []byte("x"), PublishTime: published}, published, true},
		{"unstamped", &pubsub.Message{ID: "m2", Data: []byte("x")}, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := Unmarshaler{}.Unmarshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := PublishTime(msg)
			if ok != tt.ok || !got.Equal(tt.want) {
				t.Errorf("PublishTime = %s, %t; want %s, %t", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// lagCount is how many settlements the lag histograms on reg counted.
func lagCount(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	n, _ := lagStats(t, reg)
	return n
}

// lagStats is the count and sum of the lag histograms on reg.
func lagStats(t *testing.T, reg *prometheus.Registry) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "bqobserver_handler_lag_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			n += m.GetHistogram().GetSampleCount()
			sum += m.GetHistogram().GetSampleSum()
		}
	}
	return n, sum
}
