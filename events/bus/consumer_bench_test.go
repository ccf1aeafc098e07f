package bus

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/cputest"
)

// BenchmarkConsumerHandle measures the CPU a consumer spends on a message
// of the events topic, with a handler like the running-jobs projection's: it
// applies each event in memory under one lock, in about 2 µs. Many messages
// are handled at once, as the subscriber delivers them; cpu-ns/event is
// the process's CPU time (user and system) per event, which is what more
// workers per message cost and what a wall-clock ns/op on a busy machine
// hides.
func BenchmarkConsumerHandle(b *testing.B) {
	for _, perMsg := range []int{8, 64} {
		for _, workers := range []int{1, 2, 4, DefaultEventWorkers} {
			b.Run(fmt.Sprintf("events=%d/workers=%d", perMsg, workers), func(b *testing.B) {
				benchmarkConsumerHandle(b, perMsg, workers)
			})
		}
	}
}

func benchmarkConsumerHandle(b *testing.B, perMsg, workers int) {
	f := newFixture(b)
	f.subscription("bench", eventsTopic)
	var (
		mu    sync.Mutex
		state = map[string]uint64{}
		seed  = maphash.MakeSeed()
	)
	handle := func(_ context.Context, e events.Event) error {
		mu.Lock()
		defer mu.Unlock()
		h := maphash.String(seed, e.ID)
		for range 200 { // about 2 µs of work under the lock
			h = h*0x9E3779B97F4A7C15 + 1
		}
		state[e.Job.JobID] = h
		return nil
	}
	c, err := NewConsumer(
		ConsumerConfig{Name: "bench", Topic: eventsTopic, Mode: Shared, Subscription: "bench", DeadLetterTopic: deadTopic, EventWorkers: workers},
		ConsumerDeps{PubSub: f.bus(), Publisher: f.publisher(), Logger: discard(), Handle: handle})
	if err != nil {
		b.Fatal(err)
	}
	evs := jobEvents("bench", perMsg)
	var payloads [][]byte
	for _, e := range evs {
		payloads = append(payloads, payload(b, e))
	}
	body := events.JoinMessages(payloads)
	before := cputest.Used(b)
	b.ResetTimer()
	b.SetParallelism(8) // messages in flight at once: 8 × GOMAXPROCS
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			msg := message.NewMessage("bench", body)
			msg.SetContext(context.Background())
			if _, err := c.handle(msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cputest.Used(b)-before).Nanoseconds())/float64(b.N*perMsg), "cpu-ns/event")
}
