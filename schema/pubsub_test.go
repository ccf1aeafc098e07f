package schema_test

import (
	"context"
	"errors"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bqobserver/bqobserver/internal/testutil/pubsubtest"
	"github.com/bqobserver/bqobserver/schema"
)

func topology(project string) schema.PubSub {
	return schema.PubSub{
		Project: project, AuditTopic: "bq-audit", EventsTopic: "bqobserver-events", DeadLetterTopic: "bq-audit-dead-letter",
		IngestSubscription: "bqobserver-ingest", DeadLetterSubscription: "bq-audit-dead-letter",
		HistorySubscription: "bqobserver-history",
		PushSubscription:    "bqobserver-push", PushEndpoint: "https://bqobserver.example.com/push/audit",
	}
}

// TestApplyPubSub applies the topology twice (the second run must succeed
// and change nothing), then with new settings, which must be applied.
func TestApplyPubSub(t *testing.T) {
	ps := pubsubtest.New(t)
	top := topology(ps.Project)
	for range 2 {
		if err := schema.ApplyPubSub(t.Context(), ps.Client, top); err != nil {
			t.Fatalf("ApplyPubSub: %v", err)
		}
	}
	sub := readSub(t, ps, "bqobserver-ingest")
	want := &pubsubpb.Subscription{
		Name: "projects/" + ps.Project + "/subscriptions/bqobserver-ingest", Topic: "projects/" + ps.Project + "/topics/bq-audit",
		AckDeadlineSeconds: 60, MessageRetentionDuration: durationpb.New(7 * 24 * time.Hour),
		DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{DeadLetterTopic: "projects/" + ps.Project + "/topics/bq-audit-dead-letter", MaxDeliveryAttempts: 100},
		RetryPolicy:      &pubsubpb.RetryPolicy{MinimumBackoff: durationpb.New(10 * time.Second), MaximumBackoff: durationpb.New(600 * time.Second)},
	}
	opts := []cmp.Option{protocmp.Transform(), protocmp.IgnoreFields(&pubsubpb.Subscription{}, "expiration_policy", "state", "push_config")}
	if diff := cmp.Diff(want, sub, opts...); diff != "" {
		t.Errorf("ingest subscription mismatch (-want +got):\n%s", diff)
	}
	if got := readSub(t, ps, "bqobserver-push").GetPushConfig().GetPushEndpoint(); got != top.PushEndpoint {
		t.Errorf("push endpoint = %q, want %q", got, top.PushEndpoint)
	}
	if got := readSub(t, ps, "bq-audit-dead-letter").GetTopic(); got != "projects/"+ps.Project+"/topics/bq-audit-dead-letter" {
		t.Errorf("dead-letter subscription topic = %q", got)
	}
	// The history sink's consumer group: the ingest subscription's
	// settings, on the events topic.
	want.Name, want.Topic = "projects/"+ps.Project+"/subscriptions/bqobserver-history", "projects/"+ps.Project+"/topics/bqobserver-events"
	if diff := cmp.Diff(want, readSub(t, ps, "bqobserver-history"), opts...); diff != "" {
		t.Errorf("history subscription mismatch (-want +got):\n%s", diff)
	}

	top.MaxDeliveryAttempts, top.Retention = 20, 24*time.Hour
	if err := schema.ApplyPubSub(t.Context(), ps.Client, top); err != nil {
		t.Fatalf("ApplyPubSub with new settings: %v", err)
	}
	sub = readSub(t, ps, "bqobserver-ingest")
	if got := sub.GetDeadLetterPolicy().GetMaxDeliveryAttempts(); got != 20 {
		t.Errorf("max delivery attempts after update = %d, want 20", got)
	}
	if got := sub.GetMessageRetentionDuration().AsDuration(); got != 24*time.Hour {
		t.Errorf("retention after update = %v, want 24h", got)
	}
}

// TestApplyPubSubPushOnly: without an ingest subscription (a push-only
// deployment) no pull subscription is made on the audit topic, where it
// would keep every entry for its retention; the push subscription keeps
// the ingest subscription's dead-letter and retry policies.
func TestApplyPubSubPushOnly(t *testing.T) {
	ps := pubsubtest.New(t)
	top := topology(ps.Project)
	top.IngestSubscription = ""
	if err := schema.ApplyPubSub(t.Context(), ps.Client, top); err != nil {
		t.Fatal(err)
	}
	it := ps.Client.SubscriptionAdminClient.ListSubscriptions(t.Context(), &pubsubpb.ListSubscriptionsRequest{Project: "projects/" + ps.Project})
	var audit []string
	for {
		s, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if s.GetTopic() == "projects/"+ps.Project+"/topics/bq-audit" {
			audit = append(audit, s.GetName())
		}
	}
	if want := []string{"projects/" + ps.Project + "/subscriptions/bqobserver-push"}; !slices.Equal(audit, want) {
		t.Errorf("subscriptions on the audit topic: %v, want %v", audit, want)
	}
	push := readSub(t, ps, "bqobserver-push")
	if push.GetDeadLetterPolicy().GetMaxDeliveryAttempts() != 100 || push.GetRetryPolicy() == nil {
		t.Errorf("push subscription without the ingest policies: %v", push)
	}
}

func TestApplyPubSubRefusesForeignSubscription(t *testing.T) {
	ps := pubsubtest.New(t)
	top := topology(ps.Project)
	if err := schema.ApplyPubSub(t.Context(), ps.Client, top); err != nil {
		t.Fatal(err)
	}
	top.AuditTopic = "another-topic"
	if err := schema.ApplyPubSub(t.Context(), ps.Client, top); err == nil {
		t.Error("ApplyPubSub moved an existing subscription to another topic without an error")
	}
}

func TestPubSubValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*schema.PubSub)
		ok   bool
	}{
		{"complete", func(*schema.PubSub) {}, true},
		{"no project", func(p *schema.PubSub) { p.Project = "" }, false},
		{"push without endpoint", func(p *schema.PubSub) { p.PushEndpoint = "" }, false},
		{"too many attempts", func(p *schema.PubSub) { p.MaxDeliveryAttempts = 101 }, false},
		{"retention too long", func(p *schema.PubSub) { p.Retention = 8 * 24 * time.Hour }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := topology("p")
			tt.edit(&top)
			if err := top.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func readSub(t *testing.T, ps *pubsubtest.Server, id string) *pubsubpb.Subscription {
	t.Helper()
	s, err := ps.Client.SubscriptionAdminClient.GetSubscription(t.Context(), &pubsubpb.GetSubscriptionRequest{
		Subscription: "projects/" + ps.Project + "/subscriptions/" + id})
	if err != nil {
		t.Fatalf("reading subscription %s: %v", id, err)
	}
	return s
}

func TestReplicaSubscription(t *testing.T) {
	ps := pubsubtest.New(t)
	if err := schema.ApplyPubSub(t.Context(), ps.Client, topology(ps.Project)); err != nil {
		t.Fatal(err)
	}
	r := schema.ReplicaSubscription{Project: ps.Project, Topic: "bqobserver-events", Subscription: "running-replica-1"}
	if err := r.Create(t.Context(), ps.Client); err != nil {
		t.Fatal(err)
	}
	sub := readSub(t, ps, "running-replica-1")
	if got := sub.GetExpirationPolicy().GetTtl().AsDuration(); got != 24*time.Hour {
		t.Errorf("replica subscription expires after %v, want 24h", got)
	}
	if err := r.Create(t.Context(), ps.Client); err == nil {
		t.Error("creating the same replica subscription twice succeeded")
	}
	for range 2 { // deleting is idempotent
		if err := r.Delete(t.Context(), ps.Client); err != nil {
			t.Fatal(err)
		}
	}
}

// TestApplyPubSubPastARefusedSubscription: a subscription ApplyPubSub
// refuses (one detached when its topic was deleted and created again, or
// one on another topic) is reported, with every other, and does not keep
// ApplyPubSub from creating the subscriptions after it, the dead-letter
// subscription among them.
func TestApplyPubSubPastARefusedSubscription(t *testing.T) {
	tests := []struct {
		name string
		// before changes the applied topology, or makes resources first.
		before func(t *testing.T, ps *pubsubtest.Server, top schema.PubSub)
		// wantTopics are the subscriptions' topics afterwards (by id).
		wantTopics  map[string]string
		wantRefused []string
	}{
		{
			name: "detached by a topic deleted and created again",
			before: func(t *testing.T, ps *pubsubtest.Server, top schema.PubSub) {
				mustApply(t, ps, top)
				deleteTopic(t, ps, top.AuditTopic)
				deleteSub(t, ps, top.DeadLetterSubscription)
				deleteSub(t, ps, top.HistorySubscription)
			},
			wantTopics: map[string]string{"bqobserver-ingest": "_deleted-topic_", "bqobserver-push": "_deleted-topic_",
				"bq-audit-dead-letter": "bq-audit-dead-letter", "bqobserver-history": "bqobserver-events"},
			wantRefused: []string{"bqobserver-ingest", "bqobserver-push"},
		},
		{
			name: "on another topic",
			before: func(t *testing.T, ps *pubsubtest.Server, top schema.PubSub) {
				ctx := t.Context()
				other := "projects/" + ps.Project + "/topics/other"
				if _, err := ps.Client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: other}); err != nil {
					t.Fatal(err)
				}
				if _, err := ps.Client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
					Name: "projects/" + ps.Project + "/subscriptions/" + top.IngestSubscription, Topic: other}); err != nil {
					t.Fatal(err)
				}
			},
			wantTopics: map[string]string{"bqobserver-ingest": "other", "bqobserver-push": "bq-audit",
				"bq-audit-dead-letter": "bq-audit-dead-letter", "bqobserver-history": "bqobserver-events"},
			wantRefused: []string{"bqobserver-ingest"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := pubsubtest.New(t)
			top := topology(ps.Project)
			tt.before(t, ps, top)

			err := schema.ApplyPubSub(t.Context(), ps.Client, top)
			if !errors.Is(err, schema.ErrSubscriptionElsewhere) {
				t.Errorf("ApplyPubSub = %v; want ErrSubscriptionElsewhere", err)
			}
			for _, id := range tt.wantRefused {
				if !strings.Contains(errText(err), "subscriptions/"+id+" ") {
					t.Errorf("ApplyPubSub = %v; want it to name %s", err, id)
				}
			}
			if diff := cmp.Diff(tt.wantTopics, subscriptionTopics(t, ps)); diff != "" {
				t.Errorf("subscriptions' topics (-want +got):\n%s", diff)
			}
		})
	}
}

func mustApply(t *testing.T, ps *pubsubtest.Server, top schema.PubSub) {
	t.Helper()
	if err := schema.ApplyPubSub(t.Context(), ps.Client, top); err != nil {
		t.Fatalf("ApplyPubSub: %v", err)
	}
}

func deleteTopic(t *testing.T, ps *pubsubtest.Server, id string) {
	t.Helper()
	err := ps.Client.TopicAdminClient.DeleteTopic(t.Context(), &pubsubpb.DeleteTopicRequest{Topic: "projects/" + ps.Project + "/topics/" + id})
	if err != nil {
		t.Fatal(err)
	}
}

func deleteSub(t *testing.T, ps *pubsubtest.Server, id string) {
	t.Helper()
	err := ps.Client.SubscriptionAdminClient.DeleteSubscription(t.Context(),
		&pubsubpb.DeleteSubscriptionRequest{Subscription: "projects/" + ps.Project + "/subscriptions/" + id})
	if err != nil {
		t.Fatal(err)
	}
}

// subscriptionTopics lists the project's subscriptions and their topics,
// both by id.
func subscriptionTopics(t *testing.T, ps *pubsubtest.Server) map[string]string {
	t.Helper()
	it := ps.Client.SubscriptionAdminClient.ListSubscriptions(t.Context(), &pubsubpb.ListSubscriptionsRequest{Project: "projects/" + ps.Project})
	out := map[string]string{}
	for {
		s, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[path.Base(s.GetName())] = path.Base(s.GetTopic())
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestApplyPubSubSecondRunSendsNoUpdate applies the topology to a Pub/Sub
// that reports subscriptions as Pub/Sub does, defaults included (pstest
// fills in the push wrapper; the interceptor adds x-goog-version v1 to a
// push subscription created without it): a second run sends no update.
func TestApplyPubSubSecondRunSendsNoUpdate(t *testing.T) {
	for _, account := range []string{"", "pusher@acme.iam.gserviceaccount.com"} {
		ps := pubsubtest.New(t)
		var mu sync.Mutex
		var updates []string
		reportAsPubSub := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if u, ok := req.(*pubsubpb.UpdateSubscriptionRequest); ok {
				mu.Lock()
				updates = append(updates, path.Base(u.GetSubscription().GetName())+" "+strings.Join(u.GetUpdateMask().GetPaths(), ","))
				mu.Unlock()
			}
			err := invoker(ctx, method, req, reply, cc, opts...)
			if s, ok := reply.(*pubsubpb.Subscription); ok && err == nil && strings.HasSuffix(method, "/GetSubscription") &&
				s.GetPushConfig().GetPushEndpoint() != "" && s.GetPushConfig().GetAttributes()["x-goog-version"] == "" {
				if s.PushConfig.Attributes == nil {
					s.PushConfig.Attributes = map[string]string{}
				}
				s.PushConfig.Attributes["x-goog-version"] = "v1"
			}
			return err
		}
		c, err := pubsub.NewClient(t.Context(), ps.Project, append(slices.Clone(ps.Options),
			option.WithGRPCDialOption(grpc.WithUnaryInterceptor(reportAsPubSub)))...)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		top := topology(ps.Project)
		top.PushServiceAccount = account
		for run := 1; run <= 2; run++ {
			mu.Lock()
			updates = nil
			mu.Unlock()
			if err := schema.ApplyPubSub(t.Context(), c, top); err != nil {
				t.Fatalf("push account %q, run %d: ApplyPubSub: %v", account, run, err)
			}
		}
		if len(updates) > 0 {
			t.Errorf("push account %q: the second run updated %v; want no update", account, updates)
		}
	}
}
