package ingest

import (
	"errors"
	"fmt"
	"time"
)

// Config configures the ingest pipeline. The zero value of every field but
// the topic names means its default.
type Config struct {
	// HandlerName is the router handler's stable identifier; metrics and
	// dead-letter attributes carry it. Default "ingest-audit".
	HandlerName string
	// AuditTopic is the topic the organization's log sink publishes to.
	AuditTopic string
	// EventsTopic receives every appended event (see events.MarshalMessage).
	EventsTopic string
	// DeadLetterTopic receives entries that can never be ingested, with the
	// original payload and attributes and the reason.
	DeadLetterTopic string

	// Retry bounds the in-process retries of a transient failure before the
	// entry is handed back to Pub/Sub for redelivery.
	Retry RetryConfig

	// AppendBatch is the most events one batched append writes. Default 500.
	AppendBatch int
	// AppendWorkers is how many batched appends may be in flight at once.
	// Default 4.
	AppendWorkers int
	// AppendTimeout bounds one batched append. Default 10s. The Bigtable
	// client retries a write internally until then.
	AppendTimeout time.Duration

	// PushMaxBody bounds the size of a push request body. Default 4 MiB
	// (Pub/Sub messages are at most 10 MB, audit entries at most 256 KB).
	PushMaxBody int64
	// PushMaxInFlight bounds the push requests handled at once; beyond it
	// the push intake answers 429 and Pub/Sub backs off. Default 512.
	PushMaxInFlight int
}

// RetryConfig is a bounded exponential backoff with jitter.
type RetryConfig struct {
	MaxRetries      int           // default 5
	InitialInterval time.Duration // default 100ms
	MaxInterval     time.Duration // default 5s
	Multiplier      float64       // default 2
	Jitter          float64       // randomization factor, default 0.5
	// MaxElapsed bounds all retries of one entry, default 20s: with one
	// append of up to AppendTimeout after it, an entry is answered within
	// the subscriptions' 60s acknowledgement deadline, also on the push
	// intake, whose request Pub/Sub abandons at that deadline.
	MaxElapsed time.Duration
}

// DefaultHandlerName is the ingest handler's name unless configured.
const DefaultHandlerName = "ingest-audit"

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.AppendBatch, 500)
	def(&c.AppendWorkers, 4)
	def(&c.PushMaxInFlight, 512)
	def(&c.Retry.MaxRetries, 5)
	if c.HandlerName == "" {
		c.HandlerName = DefaultHandlerName
	}
	if c.AppendTimeout == 0 {
		c.AppendTimeout = 10 * time.Second
	}
	if c.PushMaxBody == 0 {
		c.PushMaxBody = 4 << 20
	}
	r := &c.Retry
	if r.InitialInterval == 0 {
		r.InitialInterval = 100 * time.Millisecond
	}
	if r.MaxInterval == 0 {
		r.MaxInterval = 5 * time.Second
	}
	if r.Multiplier == 0 {
		r.Multiplier = 2
	}
	if r.Jitter == 0 {
		r.Jitter = 0.5
	}
	if r.MaxElapsed == 0 {
		r.MaxElapsed = 20 * time.Second
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	for name, v := range map[string]string{"audit topic": c.AuditTopic, "events topic": c.EventsTopic, "dead-letter topic": c.DeadLetterTopic} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is not set", name))
		}
	}
	if c.DeadLetterTopic != "" && (c.DeadLetterTopic == c.AuditTopic || c.DeadLetterTopic == c.EventsTopic) {
		errs = append(errs, errors.New("the dead-letter topic must differ from the audit and events topics"))
	}
	if c.AppendBatch < 0 || c.AppendWorkers < 0 || c.PushMaxInFlight < 0 || c.PushMaxBody < 0 || c.Retry.MaxRetries < 0 {
		errs = append(errs, errors.New("batch, worker, in-flight, body and retry limits must not be negative"))
	}
	if c.Retry.Jitter < 0 || c.Retry.Jitter > 1 {
		errs = append(errs, fmt.Errorf("retry jitter %v is outside [0, 1]", c.Retry.Jitter))
	}
	return errors.Join(errs...)
}
