package bus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// TestRouterClose closes routers at every point of their life: Close
// returns without using up its context, and Run returns.
func TestRouterClose(t *testing.T) {
	f := newFixture(t)
	f.subscription("exists", eventsTopic)
	tests := []struct {
		name    string
		sub     string
		run     bool
		wait    bool // until the router runs
		wantRun bool // Run fails
	}{
		{name: "never run", sub: "exists"},
		{name: "closed as it starts", sub: "exists", run: true},
		{name: "closed while running", sub: "exists", run: true, wait: true},
		{name: "its subscription is missing", sub: "missing", run: true, wantRun: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := f.bus().Subscriber(tt.sub, discard())
			if err != nil {
				t.Fatal(err)
			}
			h := func(*message.Message) ([]*message.Message, error) { return nil, nil }
			r, err := NewRouter("test", eventsTopic, sub, h, discard())
			if err != nil {
				t.Fatal(err)
			}
			ran := make(chan error, 1)
			if tt.run {
				go func() { ran <- r.Run(context.Background()) }()
			} else {
				ran <- nil
			}
			if tt.wait {
				<-r.Running()
			}
			if tt.wantRun {
				if err := <-ran; err == nil {
					t.Fatal("Run on a missing subscription returned nil")
				}
				ran <- nil
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.Close(ctx); err != nil {
				t.Errorf("Close = %v, want nil", err)
			}
			if err := <-ran; err != nil {
				t.Errorf("Run = %v after Close, want nil", err)
			}
			if err := r.Close(ctx); err != nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Errorf("second Close = %v (context %v), want nil", err, ctx.Err())
			}
		})
	}
}
