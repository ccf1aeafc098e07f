package schema

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// PubSub is the product's Pub/Sub topology.
//
// The organization's log sink publishes to AuditTopic. The ingest consumer
// group pulls from IngestSubscription (none, "", in a push-only deployment,
// where PushSubscription delivers instead); entries it cannot use go to
// DeadLetterTopic, and so do entries Pub/Sub could not deliver after
// MaxDeliveryAttempts (its dead-letter policy, a guard against an entry that
// crashes the consumer). DeadLetterSubscription keeps them for inspection and
// replay: a topic without subscriptions drops what it receives. Appended job
// events are published to EventsTopic; a consumer group of the events topic
// (the history sink) pulls from a subscription of its own, HistorySubscription.
type PubSub struct {
	Project                string
	AuditTopic             string
	EventsTopic            string
	DeadLetterTopic        string
	IngestSubscription     string
	DeadLetterSubscription string
	// HistorySubscription, when set, is the history sink's consumer group
	// on EventsTopic, with the ingest subscription's settings: events it
	// cannot use go to DeadLetterTopic, and so do events Pub/Sub could not
	// deliver after MaxDeliveryAttempts (more than 15 hours of failures),
	// which `history replay` restores from the log.
	HistorySubscription string

	// PushSubscription, with PushEndpoint, is a push subscription on
	// AuditTopic delivering to the push intake (…/push/audit). Both empty:
	// none. PushServiceAccount, when set, makes Pub/Sub sign each push with
	// an OIDC token of that account.
	PushSubscription   string
	PushEndpoint       string
	PushServiceAccount string

	// MaxDeliveryAttempts before Pub/Sub dead-letters an entry (5 to 100).
	// Default 100: with the retry policy's backoff of up to 10 minutes, an
	// entry is redelivered for over 15 hours before Pub/Sub gives up on it,
	// so an outage of the event log shorter than that dead-letters nothing.
	MaxDeliveryAttempts int32
	// MinBackoff and MaxBackoff bound the retry policy's exponential delay
	// before Pub/Sub redelivers an entry the consumer handed back. Defaults
	// 10s and 600s (Pub/Sub allows 0 to 600s).
	MinBackoff, MaxBackoff time.Duration
	// Retention is how long subscriptions keep unacknowledged messages.
	// Default (and Pub/Sub's maximum) 7 days.
	Retention time.Duration
}

func (t *PubSub) setDefaults() {
	if t.MaxDeliveryAttempts == 0 {
		t.MaxDeliveryAttempts = 100
	}
	if t.Retention == 0 {
		t.Retention = 7 * 24 * time.Hour
	}
	if t.MinBackoff == 0 {
		t.MinBackoff = 10 * time.Second
	}
	if t.MaxBackoff == 0 {
		t.MaxBackoff = 600 * time.Second
	}
}

// Validate reports every problem with t at once.
func (t PubSub) Validate() error {
	var errs []error
	for name, v := range map[string]string{
		"project": t.Project, "audit topic": t.AuditTopic, "events topic": t.EventsTopic,
		"dead-letter topic": t.DeadLetterTopic, "dead-letter subscription": t.DeadLetterSubscription,
	} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is not set", name))
		}
	}
	if (t.PushSubscription == "") != (t.PushEndpoint == "") {
		errs = append(errs, errors.New("a push subscription needs both a name and an endpoint"))
	}
	if t.MaxDeliveryAttempts != 0 && (t.MaxDeliveryAttempts < 5 || t.MaxDeliveryAttempts > 100) {
		errs = append(errs, fmt.Errorf("max delivery attempts %d is outside Pub/Sub's 5 to 100", t.MaxDeliveryAttempts))
	}
	if t.Retention != 0 && (t.Retention < 10*time.Minute || t.Retention > 7*24*time.Hour) {
		errs = append(errs, fmt.Errorf("retention %v is outside Pub/Sub's 10 minutes to 7 days", t.Retention))
	}
	if t.MinBackoff < 0 || t.MaxBackoff > 600*time.Second || (t.MaxBackoff != 0 && t.MinBackoff > t.MaxBackoff) {
		errs = append(errs, fmt.Errorf("retry backoff %v to %v is outside Pub/Sub's 0 to 600s", t.MinBackoff, t.MaxBackoff))
	}
	return errors.Join(errs...)
}

// ErrSubscriptionElsewhere marks a subscription ApplyPubSub leaves alone
// because it exists attached to another topic than the topology's, or to
// none (detached: its topic was deleted, and perhaps created again, which
// never reattaches it). Deleting it would lose what it holds; once it is
// drained, deleting it lets ApplyPubSub create it again on its topic.
var ErrSubscriptionElsewhere = errors.New("the subscription is attached to another topic")

// ApplyPubSub creates the topics and subscriptions of t that are missing
// and brings the settings of existing subscriptions up to date. Running it
// again changes nothing. A subscription that exists on another topic is
// left alone rather than deleted (ErrSubscriptionElsewhere). It applies
// every resource even when some fail or are refused, topics before the
// subscriptions on them, so that one subscription refused does not leave
// the others missing (the dead-letter subscription above all: a topic
// without one drops what it receives); the error joins every failure.
func ApplyPubSub(ctx context.Context, c *pubsub.Client, t PubSub) error {
	t.setDefaults()
	if err := t.Validate(); err != nil {
		return fmt.Errorf("pub/sub topology: %w", err)
	}
	var errs []error
	for _, topic := range []string{t.AuditTopic, t.EventsTopic, t.DeadLetterTopic} {
		errs = append(errs, ensureTopic(ctx, c, t.topicName(topic)))
	}
	for _, s := range t.subscriptions() {
		if err := ctx.Err(); err != nil { // each would fail the same way
			errs = append(errs, fmt.Errorf("applying the subscriptions: %w", err))
			break
		}
		errs = append(errs, ensureSubscription(ctx, c, s.sub, s.mask))
	}
	return errors.Join(errs...)
}

func (t *PubSub) topicName(id string) string { return "projects/" + t.Project + "/topics/" + id }
func (t *PubSub) subName(id string) string   { return "projects/" + t.Project + "/subscriptions/" + id }

type subscriptionSpec struct {
	sub  *pubsubpb.Subscription
	mask []string // the fields setup owns, updated on an existing subscription
}

func (t *PubSub) subscriptions() []subscriptionSpec {
	retention := durationpb.New(t.Retention)
	never := &pubsubpb.ExpirationPolicy{} // no TTL: never expires
	ingest := &pubsubpb.Subscription{
		Name:                     t.subName(t.IngestSubscription),
		Topic:                    t.topicName(t.AuditTopic),
		AckDeadlineSeconds:       60,
		MessageRetentionDuration: retention,
		ExpirationPolicy:         never,
		DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{
			DeadLetterTopic: t.topicName(t.DeadLetterTopic), MaxDeliveryAttempts: t.MaxDeliveryAttempts},
		RetryPolicy: &pubsubpb.RetryPolicy{MinimumBackoff: durationpb.New(t.MinBackoff), MaximumBackoff: durationpb.New(t.MaxBackoff)},
	}
	ingestMask := []string{"ack_deadline_seconds", "message_retention_duration", "expiration_policy", "dead_letter_policy", "retry_policy"}
	var specs []subscriptionSpec
	if t.IngestSubscription != "" { // else push-only: a pull subscription would only pile entries up
		specs = append(specs, subscriptionSpec{ingest, ingestMask})
	}
	specs = append(specs, subscriptionSpec{&pubsubpb.Subscription{
		Name: t.subName(t.DeadLetterSubscription), Topic: t.topicName(t.DeadLetterTopic),
		AckDeadlineSeconds: 60, MessageRetentionDuration: retention, ExpirationPolicy: never,
	}, []string{"message_retention_duration", "expiration_policy"}})
	if t.PushSubscription != "" {
		push := proto.Clone(ingest).(*pubsubpb.Subscription)
		push.Name = t.subName(t.PushSubscription)
		// The push intake reads Pub/Sub's v1 push format, a message in its
		// envelope (the Pub/Sub wrapper). Pub/Sub reports both on every push
		// subscription, defaults included (x-goog-version v1 for one created
		// through its v1 API without it): naming them keeps a second run
		// from seeing push_config changed, and sets them where they differ.
		push.PushConfig = &pubsubpb.PushConfig{PushEndpoint: t.PushEndpoint,
			Attributes: map[string]string{"x-goog-version": "v1"},
			Wrapper:    &pubsubpb.PushConfig_PubsubWrapper_{PubsubWrapper: &pubsubpb.PushConfig_PubsubWrapper{}}}
		if t.PushServiceAccount != "" {
			push.PushConfig.AuthenticationMethod = &pubsubpb.PushConfig_OidcToken_{
				OidcToken: &pubsubpb.PushConfig_OidcToken{ServiceAccountEmail: t.PushServiceAccount, Audience: t.PushEndpoint}}
		}
		specs = append(specs, subscriptionSpec{push, append(ingestMask, "push_config")})
	}
	if t.HistorySubscription != "" {
		history := proto.Clone(ingest).(*pubsubpb.Subscription)
		history.Name, history.Topic = t.subName(t.HistorySubscription), t.topicName(t.EventsTopic)
		specs = append(specs, subscriptionSpec{history, ingestMask})
	}
	return specs
}

func ensureTopic(ctx context.Context, c *pubsub.Client, name string) error {
	_, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: name})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("creating topic %s: %w", name, err)
	}
	return nil
}

func ensureSubscription(ctx context.Context, c *pubsub.Client, want *pubsubpb.Subscription, mask []string) error {
	got, err := c.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: want.Name})
	switch {
	case status.Code(err) == codes.NotFound:
		if _, err := c.SubscriptionAdminClient.CreateSubscription(ctx, want); err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("creating subscription %s: %w", want.Name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading subscription %s: %w", want.Name, err)
	case got.GetTopic() != want.Topic:
		return fmt.Errorf("subscription %s is attached to %s, not %s: %w; once it is drained, delete it, or choose another name",
			want.Name, got.GetTopic(), want.Topic, ErrSubscriptionElsewhere)
	}
	changed := changedFields(got, want, mask)
	if len(changed) == 0 {
		return nil
	}
	_, err = c.SubscriptionAdminClient.UpdateSubscription(ctx, &pubsubpb.UpdateSubscriptionRequest{
		Subscription: want, UpdateMask: &fieldmaskpb.FieldMask{Paths: changed}})
	if err != nil {
		return fmt.Errorf("updating subscription %s: %w", want.Name, err)
	}
	return nil
}

// changedFields returns the fields among mask (top-level proto field names)
// whose values differ between got and want: only those are updated, so a
// second run sends no update at all.
func changedFields(got, want proto.Message, mask []string) []string {
	g, w := got.ProtoReflect(), want.ProtoReflect()
	fields := w.Descriptor().Fields()
	var changed []string
	for _, path := range mask {
		fd := fields.ByName(protoreflect.Name(path))
		if fd == nil || !g.Get(fd).Equal(w.Get(fd)) {
			changed = append(changed, path)
		}
	}
	return changed
}

// ReplicaSubscription is a subscription of one replica of a projection on
// the events topic: each replica receives every event. It expires after a
// day without a subscriber (Pub/Sub's shortest expiration), so a replica that
// vanished without deleting it leaves nothing behind for long, and it keeps
// messages only briefly: a replica that restarts rebuilds from the log
// rather than replaying its backlog.
type ReplicaSubscription struct {
	Project      string
	Topic        string
	Subscription string
}

// Create creates the subscription. A replica names its own, so it must not
// exist yet.
func (r ReplicaSubscription) Create(ctx context.Context, c *pubsub.Client) error {
	t := PubSub{Project: r.Project}
	_, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:                     t.subName(r.Subscription),
		Topic:                    t.topicName(r.Topic),
		AckDeadlineSeconds:       20,
		MessageRetentionDuration: durationpb.New(10 * time.Minute),
		ExpirationPolicy:         &pubsubpb.ExpirationPolicy{Ttl: durationpb.New(24 * time.Hour)},
	})
	if err != nil {
		return fmt.Errorf("creating replica subscription %s on %s: %w", r.Subscription, r.Topic, err)
	}
	return nil
}

// Delete deletes the subscription; a replica does so when it stops.
func (r ReplicaSubscription) Delete(ctx context.Context, c *pubsub.Client) error {
	t := PubSub{Project: r.Project}
	err := c.SubscriptionAdminClient.DeleteSubscription(ctx, &pubsubpb.DeleteSubscriptionRequest{Subscription: t.subName(r.Subscription)})
	if err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("deleting replica subscription %s: %w", r.Subscription, err)
	}
	return nil
}
