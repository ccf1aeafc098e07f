package bus

import (
	"fmt"
	"log/slog"

	"cloud.google.com/go/pubsub/v2"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-googlecloud/v2/pkg/googlecloud"
	"github.com/ThreeDotsLabs/watermill/message"
	"google.golang.org/api/option"
)

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
		ClientOptions:                    p.Options,
		Unmarshaler:                      Unmarshaler{},
	}, watermill.NewSlogLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("connecting the subscriber of %s: %w", subscription, err)
	}
	return sub, nil
}

// Publisher returns a Watermill publisher, for the policy's dead letters.
func (p PubSub) Publisher(logger *slog.Logger) (message.Publisher, error) {
	pub, err := googlecloud.NewPublisher(googlecloud.PublisherConfig{
		ProjectID:                p.Client.Project(),
		DoNotCheckTopicExistence: true,
		ClientOptions:            p.Options,
	}, watermill.NewSlogLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("connecting the Pub/Sub publisher: %w", err)
	}
	return pub, nil
}

// Unmarshaler turns Pub/Sub messages into Watermill messages like
// Watermill's default, but names a message that Watermill did not publish
// (every entry a log sink publishes, every event the appender publishes) by
// its Pub/Sub message id, so that logs and dead-letter metadata identify it.
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
	return msg, nil
}
