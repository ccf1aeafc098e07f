package emulator

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bqobserver/bqobserver/internal/measure"
	"github.com/bqobserver/bqobserver/internal/testutil/envtest"
)

// BenchmarkPubSubDrain measures the ceiling the Pub/Sub emulator sets on
// draining a backlog: b.N messages of 3 KB (an audit entry's size) wait on
// a subscription of a freshly started emulator, then a receiver that holds
// 1,000 messages at once (the service's default) on some number of
// StreamingPull streams (the service's --pull-streams, 8 by default)
// acknowledges each at once. It reports messages a second and the
// emulator's CPU time per message, which grows with the backlog:
//
//	BQOBSERVER_GCLOUD_SDK=$(gcloud info --format='value(installation.sdk_root)') \
//	  go test -run '^$' -bench PubSubDrain -benchtime 50000x ./internal/emulator/
//
// Why (the emulator's bytecode, and a JFR recording of it in a drain, where
// this method had 94-97% of its execution samples): each stream's pusher
// pulls at most 100 messages and sleeps 50 ms, so one stream carries at most
// 2,000 a second and more streams drain faster; but every pull, while any
// message is out and not acknowledged, first copies the subscription's
// whole undelivered set (MessageBacklog.updateExpiredAckDeadlines), and
// pulls hold the subscription's lock. Each 100 messages cost a copy of the
// backlog on one thread at a time, whatever the number of streams.
func BenchmarkPubSubDrain(b *testing.B) {
	for _, streams := range []int{1, 4, 8, 12} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) { benchmarkDrain(b, streams) })
	}
}

func benchmarkDrain(b *testing.B, streams int) {
	sdk := envtest.Getenv(b, "BQOBSERVER_GCLOUD_SDK", "the gcloud SDK's emulators")
	p, err := StartPubSub(b.Context(), sdk, b.TempDir(), "") // the JVM's defaults, or CLOUD_PUBSUB_EMULATOR_OPTS
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		p.Stop(ctx)
	})
	c := drainClient(b, p.Addr)
	backlog(b, c, b.N)
	before, err := measure.ProcessUsage(p.PID)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	drain(b, c, b.N, streams)
	b.StopTimer()
	after, err := measure.ProcessUsage(p.PID)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64((after.CPU-before.CPU).Microseconds())/float64(b.N), "emulator-cpu-µs/msg")
}

const drainProject, drainTopic, drainSub = "drain-bench", "backlog", "backlog-sub"

func drainClient(b *testing.B, addr string) *pubsub.Client {
	c, err := pubsub.NewClient(b.Context(), drainProject, option.WithEndpoint(addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	topic := "projects/" + drainProject + "/topics/" + drainTopic
	if _, err := c.TopicAdminClient.CreateTopic(b.Context(), &pubsubpb.Topic{Name: topic}); err != nil {
		b.Fatal(err)
	}
	_, err = c.SubscriptionAdminClient.CreateSubscription(b.Context(), &pubsubpb.Subscription{
		Name: "projects/" + drainProject + "/subscriptions/" + drainSub, Topic: topic, AckDeadlineSeconds: 60})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// backlog publishes n messages and waits until every one is stored.
func backlog(b *testing.B, c *pubsub.Client, n int) {
	pub := c.Publisher(drainTopic)
	defer pub.Stop()
	data := make([]byte, 3000)
	results := make([]*pubsub.PublishResult, n)
	for i := range n {
		results[i] = pub.Publish(b.Context(), &pubsub.Message{Data: data, Attributes: map[string]string{"i": strconv.Itoa(i)}})
	}
	for _, r := range results {
		if _, err := r.Get(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

// drain receives on streams streams and acknowledges until n messages came.
func drain(b *testing.B, c *pubsub.Client, n, streams int) {
	sub := c.Subscriber(drainSub)
	sub.ReceiveSettings.NumGoroutines, sub.ReceiveSettings.MaxOutstandingMessages = streams, 1000
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Minute)
	defer cancel()
	var got atomic.Int64
	err := sub.Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		if got.Add(1) >= int64(n) {
			cancel()
		}
	})
	if err != nil || got.Load() < int64(n) {
		b.Fatal(fmt.Errorf("received %d of %d messages: %w", got.Load(), n, err))
	}
}
