package bus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bqobserver/bqobserver/events"
)

// While Pub/Sub takes no publishes, the events waiting in the client stay
// within the appender's bound: past it, an append fails at once, with a
// transient error that says so, instead of leaving its events to wait in
// memory.
func TestAppenderBoundsWaitingPublishes(t *testing.T) {
	f := newFixture(t)
	hanging := make(chan struct{}) // closed before the clients close
	block := grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method == "/google.pubsub.v1.Publisher/Publish" {
			select {
			case <-hanging:
				return status.Error(codes.FailedPrecondition, "the test is over")
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	})
	client, err := pubsub.NewClient(t.Context(), f.ps.Project, append(f.ps.Options, option.WithGRPCDialOption(block))...)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	const bound = 20
	a, err := NewAppender(AppenderConfig{Topic: eventsTopic, PublishMaxMessages: bound}, newLog(t), client, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	defer close(hanging)

	refused := 0
	for i := range 3 * bound {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		err := a.Append(ctx, jobEvents(fmt.Sprint("p", i), 1))
		cancel()
		if !errors.Is(err, events.ErrUnavailable) {
			t.Fatalf("append %d while Pub/Sub hangs: %v, want a transient error", i, err)
		}
		if errors.Is(err, pubsub.ErrFlowControllerMaxOutstandingMessages) {
			refused++
		}
	}
	// The first appends wait for their publishes until their deadline;
	// once bound publishes wait, the others are refused.
	if want := 2 * bound; refused < want {
		t.Errorf("%d of %d appends refused at once, want at least %d: publishes wait beyond the bound", refused, 3*bound, want)
	}
}
