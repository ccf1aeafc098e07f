package bus

import (
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// MetaPublished is the metadata in which a received message carries its
// Pub/Sub publish time, RFC 3339 with nanoseconds: the Unmarshaler sets it
// from pubsub.Message.PublishTime, the push intake from the envelope's
// publishTime. A dead-lettered message keeps it.
const MetaPublished = "bqobserver_published"

// PublishTime returns the Pub/Sub publish time msg carries (MetaPublished),
// and false when it carries none.
func PublishTime(msg *message.Message) (time.Time, bool) {
	s := msg.Metadata.Get(MetaPublished)
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// Lag follows how far one handler is behind its subscription, by the Pub/Sub
// publish time of each message it handles. A message is unprocessed from
// the moment it is published until the handler settles it: acknowledged
// (done, skipped or dead-lettered) or handed back to Pub/Sub. A message
// without a publish time is not followed.
//
// Lag sees a message once the handler starts on it, not while it waits in
// the subscription. Under a backlog Pub/Sub delivers roughly oldest first,
// in bursts: the oldest message in hand is then close to the oldest in the
// subscription, and between two bursts, when none is in hand, the lag of
// the message settled last stands for it, for LagHold at most (Cloud
// Monitoring's subscription/oldest_unacked_message_age is the exact
// figure). Behind is therefore:
//
//   - with messages in hand, the age of the oldest of them;
//   - with none, the time the last settled message took from publication
//     to settlement, if it settled within LagHold;
//   - otherwise 0: nothing has come for a while, so nothing is waiting (or
//     the subscription stalls, which only Pub/Sub's own metrics can tell);
//   - and, for a consumer with an Echo, never less than the age of the
//     oldest event this process published that the consumer has not
//     received: a stall of its own subscription while this process
//     publishes.
//
// Its metrics, labelled with the handler's name:
//
//   - bqobserver_handler_oldest_unprocessed_seconds: Behind when scraped;
//   - bqobserver_handler_lag_seconds: a histogram of the time from publish to
//     settlement of each message (a redelivered message counts again, from
//     its first publication).
type Lag struct {
	now     func() time.Time
	settled prometheus.Observer
	echo    *Echo // nil: none

	mu          sync.Mutex
	inflight    map[*message.Message]time.Time
	lastLag     time.Duration // of the message settled last
	lastSettled time.Time
}

// LagHold is how long the lag of the last settled message stands for the
// handler's lag while it holds no message.
const LagHold = 10 * time.Second

// Buckets of the lag histogram: 5ms to about 30 minutes, 1.5 times apart.
var lagBuckets = prometheus.ExponentialBucketsRange(0.005, 1800, 32)

// NewLag returns the lag of handler, its metrics registered on reg (nil:
// not registered).
func NewLag(handler string, reg prometheus.Registerer) (*Lag, error) {
	l := &Lag{now: time.Now, inflight: map[*message.Message]time.Time{}}
	labels := prometheus.Labels{"handler": handler}
	oldest := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "bqobserver", Subsystem: "handler", Name: "oldest_unprocessed_seconds", ConstLabels: labels,
		Help: "Age, by Pub/Sub publish time, of the oldest message the handler is working on (received, not yet acknowledged or handed back); when it holds none, the publish-to-settlement time of the message it settled last, for 10s; then 0. Messages not yet delivered are not seen, except, for this replica's live feed, the events this process published: never less than the age of the oldest of them not received yet.",
	}, func() float64 { return l.Behind(l.now()).Seconds() })
	hist := prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "bqobserver", Subsystem: "handler", Name: "lag_seconds", ConstLabels: labels, Buckets: lagBuckets,
		Help: "Time from a message's Pub/Sub publication to its settlement (acknowledged or handed back) by the handler.",
	})
	l.settled = hist
	if reg == nil {
		return l, nil
	}
	for _, c := range []prometheus.Collector{oldest, hist} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering the lag metrics of %s: %w", handler, err)
		}
	}
	return l, nil
}

// Behind returns how far the handler is behind at now (see Lag): with an
// Echo, at least as far as the oldest event this process published and the
// handler has not received.
func (l *Lag) Behind(now time.Time) time.Duration {
	return max(l.behind(now), l.echo.Behind(now))
}

func (l *Lag) behind(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var oldest time.Time
	for _, t := range l.inflight {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	switch {
	case !oldest.IsZero():
		return max(now.Sub(oldest), 0)
	case now.Sub(l.lastSettled) <= LagHold:
		return l.lastLag
	}
	return 0
}

// Middleware follows each message through h.
func (l *Lag) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		published, ok := PublishTime(msg)
		if !ok {
			return h(msg)
		}
		l.mu.Lock()
		l.inflight[msg] = published
		l.mu.Unlock()
		defer func() {
			now := l.now()
			lag := max(now.Sub(published), 0)
			l.mu.Lock()
			delete(l.inflight, msg)
			l.lastLag, l.lastSettled = lag, now
			l.mu.Unlock()
			l.settled.Observe(lag.Seconds())
		}()
		return h(msg)
	}
}
