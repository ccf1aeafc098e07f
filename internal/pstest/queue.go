// Copyright 2025 Google LLC
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//      http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

// This file is not part of pstest v2.8.1. It replaces the delivery of
// fake.go (subscription.deliver, pull, tryDeliverMessage,
// maintainMessages, orderMsgs and filterMsgs), which scanned every unacked
// message of a subscription on every pass; see PATCHES.md.

package pstest

import (
	"fmt"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	filter "github.com/bqobserver/bqobserver/internal/pstest/internal/filter"
)

// Delivery limits. A stream gets at most maxBatchMessages messages and,
// unless one message is larger, maxBatchBytes of data per response, below
// gRPC's default 4 MiB limit on what a client receives.
const (
	maxBatchMessages = 1000
	maxBatchBytes    = 2 << 20
	// leaseScanInterval is how often expired ack deadlines are looked for.
	leaseScanInterval = 100 * time.Millisecond
)

// add takes a newly published message into the subscription, unless the
// subscription's filter refuses it (the service acknowledges those on the
// subscriber's behalf). It reports whether the subscription took it.
//
// Must be called with the lock held.
func (s *subscription) add(m *message) bool {
	if s.filter != nil && !filter.Evaluate(s.filter, m.proto.Message.Attributes) {
		return false
	}
	s.msgs[m.id] = m
	if key := s.orderingKey(m); key != "" {
		s.byKey[key] = append(s.byKey[key], m)
		if len(s.byKey[key]) > 1 {
			return true // it waits for the messages before it
		}
	}
	s.enqueue(m)
	return true
}

// orderingKey is m's ordering key when the subscription orders messages.
func (s *subscription) orderingKey(m *message) string {
	if !s.proto.EnableMessageOrdering {
		return ""
	}
	return m.proto.Message.OrderingKey
}

// enqueue makes m available for delivery, at the back of the queue.
func (s *subscription) enqueue(m *message) {
	if m.inQueue {
		return
	}
	m.inQueue = true
	s.ready = append(s.ready, m)
}

// requeue makes m, no longer owned by a stream, available again, or sends
// it to the dead-letter topic when its delivery attempts are used up.
//
// Must be called with the lock held.
func (s *subscription) requeue(m *message) {
	switch {
	case s.deadLetterCandidate(m):
		s.deadLetter(m)
	case s.available(m):
		s.enqueue(m)
	}
}

// deadLetter moves m to the dead-letter topic.
func (s *subscription) deadLetter(m *message) {
	s.remove(m)
	(*m.acks)++
	s.publishToDeadLetter(m)
}

// available reports whether m may be delivered now: it is still unacked,
// not owned by a stream, and (with ordering) first of its key.
func (s *subscription) available(m *message) bool {
	if s.msgs[m.id] != m || m.outstanding() {
		return false
	}
	if key := s.orderingKey(m); key != "" {
		return s.byKey[key][0] == m
	}
	return true
}

// remove forgets m: acknowledged, expired, dead-lettered or dropped by a
// seek. With ordering, the next message of its key becomes available.
//
// Must be called with the lock held.
func (s *subscription) remove(m *message) {
	if s.msgs[m.id] != m {
		return
	}
	delete(s.msgs, m.id)
	delete(s.leased, m.id)
	m.owner.holds--
	if m.owner.holds == 0 && s.forget != nil {
		s.forget(m.owner)
	}
	key := s.orderingKey(m)
	if key == "" {
		return
	}
	q := s.byKey[key]
	for i := range q {
		if q[i] == m {
			q = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(q) == 0 {
		delete(s.byKey, key)
		return
	}
	s.byKey[key] = q
	if !q[0].outstanding() {
		s.enqueue(q[0])
	}
}

// clear removes every message.
//
// Must be called with the lock held.
func (s *subscription) clear() {
	for _, m := range s.msgs {
		s.remove(m)
	}
	s.ready, s.head = nil, 0
}

// retention is how long an unacked message is kept: the subscription's
// message retention duration (7 days unless set).
func (s *subscription) retention() time.Duration {
	if d := s.proto.MessageRetentionDuration; d != nil {
		return d.AsDuration()
	}
	return defaultMessageRetentionDuration.AsDuration()
}

// expired reports whether m, not owned by a stream, has outlived the
// subscription's retention.
func (s *subscription) expired(m *message, now time.Time) bool {
	return !m.outstanding() && now.Sub(m.publishTime) > s.retention()
}

// maintainMessages makes the messages whose ack deadline passed available
// again, and drops expired messages from the front of the queue (others
// are dropped when delivery reaches them).
//
// Must be called with the lock held.
func (s *subscription) maintainMessages(now time.Time) {
	if wait := s.nextLeaseScan.Sub(now); wait > 0 && wait <= leaseScanInterval {
		return // scanned recently (a clock set back scans at once)
	}
	s.nextLeaseScan = now.Add(leaseScanInterval)
	for id, m := range s.leased {
		if now.After(m.ackDeadline) {
			delete(s.leased, id)
			m.makeAvailable()
			s.requeue(m)
		}
	}
	for s.head < len(s.ready) {
		m := s.ready[s.head]
		if s.available(m) && !s.expired(m, now) {
			break
		}
		s.pop()
		if s.available(m) {
			s.remove(m)
		}
	}
}

// pop drops the message at the front of the queue.
func (s *subscription) pop() {
	s.ready[s.head].inQueue = false
	s.ready[s.head] = nil
	s.head++
	if s.head == len(s.ready) {
		s.ready, s.head = s.ready[:0], 0
	} else if s.head > 1024 && s.head*2 > len(s.ready) {
		n := copy(s.ready, s.ready[s.head:])
		clear(s.ready[n:])
		s.ready, s.head = s.ready[:n], 0
	}
}

// batch takes up to max messages from the front of the queue, and at most
// maxBatchBytes of data unless the first is larger. Messages that can no
// longer be delivered are dropped on the way; expired ones and those whose
// delivery attempts are used up leave the subscription (the latter to the
// dead-letter topic).
//
// Must be called with the lock held.
func (s *subscription) batch(max int, now time.Time) []*message {
	var out []*message
	size := 0
	for s.head < len(s.ready) && len(out) < max {
		m := s.ready[s.head]
		switch {
		case !s.available(m):
		case s.expired(m, now):
			s.remove(m)
		case s.deadLetterCandidate(m):
			s.deadLetter(m)
		case len(out) > 0 && size+len(m.proto.Message.Data) > maxBatchBytes:
			return out
		default:
			out = append(out, m)
			size += len(m.proto.Message.Data)
		}
		s.pop()
	}
	return out
}

// unbatch puts messages that could not be delivered back at the front of
// the queue, in their order.
func (s *subscription) unbatch(ms []*message) {
	if len(ms) == 0 {
		return
	}
	if s.head >= len(ms) {
		s.head -= len(ms)
		copy(s.ready[s.head:], ms)
	} else {
		s.ready = append(append(make([]*message, 0, len(ms)+len(s.ready)-s.head), ms...), s.ready[s.head:]...)
		s.head = 0
	}
	for _, m := range ms {
		m.inQueue = true
	}
}

// responses returns ms as a response carries them, each with the ack id
// of its next delivery. It changes nothing: commit does, once a stream
// took them.
func (s *subscription) responses(ms []*message) []*pb.ReceivedMessage {
	out := make([]*pb.ReceivedMessage, len(ms))
	for i, m := range ms {
		attempt := *m.deliveries + 1
		// A new value, not m.proto: that changes on the next delivery
		// while a stream may still be sending this one.
		out[i] = &pb.ReceivedMessage{AckId: fmt.Sprintf("%s:%d", m.id, attempt), Message: m.proto.Message}
		if s.proto.DeadLetterPolicy != nil {
			out[i].DeliveryAttempt = int32(attempt)
		}
	}
	return out
}

// commit records the delivery of ms as out, owned until now+ackTimeout.
func (s *subscription) commit(ms []*message, out []*pb.ReceivedMessage, now time.Time, ackTimeout time.Duration) {
	for i, m := range ms {
		(*m.deliveries)++
		m.proto.AckId = out[i].AckId
		m.proto.DeliveryAttempt = out[i].DeliveryAttempt
		m.ackDeadline = now.Add(ackTimeout)
		s.leased[m.id] = m
	}
}

// pull takes up to max messages for a Pull call.
//
// Must be called with the lock held.
func (s *subscription) pull(max int) []*pb.ReceivedMessage {
	now := s.timeNowFunc()
	s.maintainMessages(now)
	ms := s.batch(max, now)
	out := s.responses(ms)
	s.commit(ms, out, now, s.ackTimeout)
	return out
}

// deliver hands the available messages to the subscription's streams in
// batches, round robin, each stream getting its share, until no stream is
// ready to send or no message is left.
func (s *subscription) deliver() {
	s.mu.Lock()
	defer s.mu.Unlock()

	now := s.timeNowFunc()
	s.maintainMessages(now)
	for len(s.streams) > 0 && s.head < len(s.ready) && s.streamHasRoom() {
		share := (len(s.ready) - s.head + len(s.streams) - 1) / len(s.streams)
		ms := s.batch(min(share, maxBatchMessages), now)
		if len(ms) == 0 {
			return
		}
		if !s.tryDeliverBatch(ms, now) {
			s.unbatch(ms)
			return
		}
	}
}

// streamHasRoom reports whether a stream that has not ended can take a
// batch now. deliver asks before it batches: only deliver sends on the
// streams' channels, under the lock, so a stream with room takes the batch.
// Batching messages that no stream takes, only to put them back, is what
// held the lock most of the time under a backlog, every 10ms for every
// subscription.
//
// Must be called with the lock held.
func (s *subscription) streamHasRoom() bool {
	for _, st := range s.streams {
		select {
		case <-st.done:
			continue
		default:
		}
		if len(st.msgc) < cap(st.msgc) {
			return true
		}
	}
	return false
}

// tryDeliverBatch offers ms to each stream in turn, starting after the one
// served last, and reports whether one took them. Streams that ended are
// dropped on the way.
//
// Must be called with the lock held.
func (s *subscription) tryDeliverBatch(ms []*message, now time.Time) bool {
	out := s.responses(ms)
	for i := 0; i < len(s.streams); i++ {
		idx := (s.nextStream + i) % len(s.streams)
		st := s.streams[idx]
		select {
		case <-st.done:
			s.streams = deleteStreamAt(s.streams, idx)
			i--
			continue
		default:
		}
		select {
		case st.msgc <- out:
			s.commit(ms, out, now, st.ackTimeout)
			s.nextStream = idx + 1
			return true
		default:
		}
	}
	return false
}

// dropFiltered removes the unacked messages that the subscription's filter,
// just changed, refuses.
//
// Must be called with the lock held.
func (s *subscription) dropFiltered() {
	if s.filter == nil {
		return
	}
	for _, m := range s.msgs {
		if !filter.Evaluate(s.filter, m.proto.Message.Attributes) {
			s.remove(m)
		}
	}
}
