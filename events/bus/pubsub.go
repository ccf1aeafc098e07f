package bus

import (
	"fmt"
	"log/slog"
	"time"

	"cloud.google.com/go/pubsub/v2"
	vkit "cloud.google.com/go/pubsub/v2/apiv1"
	"github.com/ThreeDotsLabs/watermill-googlecloud/v2/pkg/googlecloud"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"

	"github.com/bqobserver/bqobserver/events"
)

// ReconnectBackoff caps the wait between two attempts to open a pull
// stream or to publish, in every Pub/Sub client the service makes. The
// client library's own cap is 60 s, which its multiplier of 4 reaches
// after about ten seconds of an outage: intake then resumed up to minutes
// after Pub/Sub came back (an emulator restarted, a network partition
// healed). At 5 s it resumes within seconds; an outage costs one attempt
// every 5 s per stream.
const ReconnectBackoff = 5 * time.Second

// ClientConfig is the configuration of every Pub/Sub client the service
// makes: the library's retries, codes and timeouts, with the backoff of
// StreamingPull and Publish capped at ReconnectBackoff.
func ClientConfig() *pubsub.ClientConfig {
	backoff := gax.Backoff{Initial: 100 * time.Millisecond, Max: ReconnectBackoff, Multiplier: 2}
	return &pubsub.ClientConfig{
		SubscriptionAdminCallOptions: &vkit.SubscriptionAdminCallOptions{
			StreamingPull: []gax.CallOption{gax.WithRetry(func() gax.Retryer {
				return gax.OnCodes([]codes.Code{codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted,
					codes.Internal, codes.Unavailable}, backoff)
			})},
		},
		TopicAdminCallOptions: &vkit.TopicAdminCallOptions{
			Publish: []gax.CallOption{gax.WithTimeout(60 * time.Second), gax.WithRetry(func() gax.Retryer {
				return gax.OnCodes([]codes.Code{codes.Aborted, codes.Canceled, codes.Internal, codes.ResourceExhausted,
					codes.Unknown, codes.Unavailable, codes.DeadlineExceeded}, backoff)
			})},
		},
	}
}

// PubSub is how the bus reaches Pub/Sub.
type PubSub struct {
	// Client administers per-replica subscriptions; its project is the
	// project of every topic and subscription.
	Client *pubsub.Client
	// Options connect the clients Watermill makes of its own.
	Options []option.ClientOption
	// Receive are the flow-control settings of every subscriber.
	Receive pubsub.ReceiveSettings
}

// Subscriber returns a Watermill subscriber that pulls from subscription,
// which must exist: it never creates a subscription or a topic.
func (p PubSub) Subscriber(subscription string, logger *slog.Logger) (message.Subscriber, error) {
	sub, err := googlecloud.NewSubscriber(googlecloud.SubscriberConfig{
		ProjectID:                        p.Client.Project(),
		GenerateSubscriptionName:         func(string) string { return subscription },
		DoNotCreateSubscriptionIfMissing: true,
		DoNotCreateTopicIfMissing:        true,
		ReceiveSettings:                  p.Receive,
		ClientConfig:                     ClientConfig(),
		ClientOptions:                    p.Options,
		Unmarshaler:                      Unmarshaler{},
	}, watermillLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("connecting the subscriber of %s: %w", subscription, err)
	}
	return sub, nil
}

// Publisher returns a Watermill publisher, for the policy's dead letters.
// Their metadata become attributes bounded as Pub/Sub requires
// (events.BoundAttribute): a dead letter's reason may quote a panic's stack
// or a long error, and a publish with a longer value is refused whole, so
// the message would be redelivered for ever instead of dead-lettered.
func (p PubSub) Publisher(logger *slog.Logger) (message.Publisher, error) {
	pub, err := googlecloud.NewPublisher(googlecloud.PublisherConfig{
		ProjectID:                p.Client.Project(),
		DoNotCheckTopicExistence: true,
		ClientConfig:             ClientConfig(),
		ClientOptions:            p.Options,
		Marshaler:                BoundedMarshaler{},
	}, watermillLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("connecting the Pub/Sub publisher: %w", err)
	}
	return pub, nil
}

// BoundedMarshaler turns Watermill messages into Pub/Sub messages like
// Watermill's default, with every attribute's value bounded as Pub/Sub
// requires (events.BoundAttribute).
type BoundedMarshaler struct{}

var _ googlecloud.Marshaler = BoundedMarshaler{}

// Marshal converts msg for topic.
func (BoundedMarshaler) Marshal(topic string, msg *message.Message) (*pubsub.Message, error) {
	m, err := googlecloud.DefaultMarshalerUnmarshaler{}.Marshal(topic, msg)
	if err != nil {
		return nil, err
	}
	for k, v := range m.Attributes {
		m.Attributes[k] = events.BoundAttribute(v)
	}
	return m, nil
}

// Unmarshaler turns Pub/Sub messages into Watermill messages like
// Watermill's default, but names a message that Watermill did not publish
// (every entry a log sink publishes, every event the appender publishes) by
// its Pub/Sub message id, so that logs and dead-letter metadata identify it,
// and carries its publish time in MetaPublished, for Lag.
type Unmarshaler struct{}

var _ googlecloud.Unmarshaler = Unmarshaler{}

// Unmarshal converts m, keeping its data and attributes.
func (Unmarshaler) Unmarshal(m *pubsub.Message) (*message.Message, error) {
	msg, err := googlecloud.DefaultMarshalerUnmarshaler{}.Unmarshal(m)
	if err != nil {
		return nil, err
	}
	if msg.UUID == "" {
		msg.UUID = m.ID
	}
	if !m.PublishTime.IsZero() {
		msg.Metadata.Set(MetaPublished, m.PublishTime.UTC().Format(time.RFC3339Nano))
	}
	return msg, nil
}
