package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/bqobserver/bqobserver/events/bus"
)

// Config configures the ingest pipeline. The zero value of every field but
// the topic names means its default.
type Config struct {
	// HandlerName is the router handler's stable identifier; logs and
	// dead-letter attributes carry it. Default "ingest-audit".
	HandlerName string
	// AuditTopic is the topic the organization's log sink publishes to.
	AuditTopic string
	// DeadLetterTopic receives entries that can never be ingested, with the
	// original payload and attributes and the reason.
	DeadLetterTopic string

	// Retry bounds the in-process retries of a transient failure before the
	// entry is handed back to Pub/Sub for redelivery.
	Retry bus.RetryConfig

	// PushMaxBody bounds the size of a push request body the intake
	// handles. Default 4 MiB (audit entries are at most 256 KB). A body
	// larger, up to the largest Pub/Sub pushes (a 10 MB message, 16 MiB in
	// its envelope), is read through and dead-lettered (too_large) by its
	// start, end, length and digest; a body larger still is answered 413.
	PushMaxBody int64
	// PushMaxInFlight bounds the push requests handled at once; beyond it
	// the push intake answers 429 and Pub/Sub backs off. Default 512.
	PushMaxInFlight int
	// PushMaxInFlightBytes bounds the memory the push bodies being read or
	// handled hold together (each byte of body counts twice: the body and
	// the entry decoded from it); beyond it the push intake answers 429.
	// Default 64 MiB.
	PushMaxInFlightBytes int64
	// PushReadTimeout bounds the time a push body may take to arrive;
	// a slower one is answered 408. Default 10s.
	PushReadTimeout time.Duration
	// PushTimeout bounds the handling of one push request once its body
	// has arrived, retries included; when it passes the request is
	// answered 503 with Retry-After and Pub/Sub pushes the entry again.
	// Default 10s, Pub/Sub's default push acknowledgement deadline.
	PushTimeout time.Duration
	// DeadLetterMaxBody bounds how much of a push body that is not an
	// envelope is copied to the dead-letter topic (its length and digest
	// are kept beside). Default 64 KiB.
	DeadLetterMaxBody int64
}

// DefaultHandlerName is the ingest handler's name unless configured.
const DefaultHandlerName = "ingest-audit"

func (c *Config) setDefaults() {
	if c.PushMaxInFlight == 0 {
		c.PushMaxInFlight = 512
	}
	if c.HandlerName == "" {
		c.HandlerName = DefaultHandlerName
	}
	if c.PushMaxBody == 0 {
		c.PushMaxBody = 4 << 20
	}
	if c.PushMaxInFlightBytes == 0 {
		c.PushMaxInFlightBytes = 64 << 20
	}
	if c.PushReadTimeout == 0 {
		c.PushReadTimeout = 10 * time.Second
	}
	if c.PushTimeout == 0 {
		c.PushTimeout = 10 * time.Second
	}
	if c.DeadLetterMaxBody == 0 {
		c.DeadLetterMaxBody = 64 << 10
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	for name, v := range map[string]string{"audit topic": c.AuditTopic, "dead-letter topic": c.DeadLetterTopic} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is not set", name))
		}
	}
	if c.DeadLetterTopic != "" && c.DeadLetterTopic == c.AuditTopic {
		errs = append(errs, errors.New("the dead-letter topic must differ from the audit topic"))
	}
	if c.PushMaxInFlight < 0 || c.PushMaxBody < 0 || c.PushMaxInFlightBytes < 0 || c.PushReadTimeout < 0 || c.PushTimeout < 0 || c.DeadLetterMaxBody < 0 {
		errs = append(errs, errors.New("push in-flight, body, time and dead-letter limits must not be negative"))
	}
	if c.PushMaxBody > pushCeiling {
		errs = append(errs, fmt.Errorf("push max body %d is larger than any Pub/Sub push (%d)", c.PushMaxBody, pushCeiling))
	}
	if c.PushMaxInFlightBytes > 0 && c.PushMaxInFlightBytes < amplification*(c.PushMaxBody+firstChunk) {
		errs = append(errs, fmt.Errorf("push in-flight bytes %d cannot hold one push of the largest body %d", c.PushMaxInFlightBytes, c.PushMaxBody))
	}
	return errors.Join(errs...)
}
