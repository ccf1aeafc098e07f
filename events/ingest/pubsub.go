package ingest

import (
	"cloud.google.com/go/pubsub/v2"
	"github.com/ThreeDotsLabs/watermill-googlecloud/v2/pkg/googlecloud"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Unmarshaler turns Pub/Sub messages into Watermill messages like
// Watermill's default, but names a message that Watermill did not publish
// (every entry a log sink publishes) by its Pub/Sub message id, so that logs
// and dead-letter metadata identify it.
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

// sharedPublisher lends a publisher to the router without letting it close
// it: the router closes a handler's publisher when the handler stops, but
// the push intake and the poison queue share this one, and its owner closes
// it last.
type sharedPublisher struct{ message.Publisher }

func (sharedPublisher) Close() error { return nil }
