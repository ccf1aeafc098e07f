package ingest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bqobserver/bqobserver/events"
)

// slowPush opens a connection to srv and starts a push whose body, of
// declared length size, it never finishes sending (it has sent sent bytes
// of it). The connection closes when the test ends.
func slowPush(t *testing.T, srv *httptest.Server, size, sent int) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /push/audit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)
	if _, err := conn.Write(bytes.Repeat([]byte(" "), sent)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// answer reads the status of the answer on conn.
func answer(t *testing.T, conn net.Conn, within time.Duration) int {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(within))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestPushSlowBodiesHoldNoSlot: pushes whose bodies trickle in hold neither
// an in-flight slot nor much memory, so a push sent whole is ingested at
// once; and a body not received in time is answered 408.
func TestPushSlowBodiesHoldNoSlot(t *testing.T) {
	c := newCorpus(t, 120, 3)
	h := newHarness(t, harnessOpts{cfg: Config{PushMaxInFlight: 4, PushReadTimeout: 2 * time.Second}})
	mux := http.NewServeMux()
	mux.Handle("/push/audit", h.pipe.PushHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	var slow []net.Conn
	for range 40 { // ten times the slots
		slow = append(slow, slowPush(t, srv, 4<<20, 1))
	}
	start := time.Now()
	resp, err := srv.Client().Post(srv.URL+"/push/audit", "application/json", bytes.NewReader(envelope(t, c.jobEntry(t), 1)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("a push sent whole beside 40 slow ones answered %d, want 204", resp.StatusCode)
	}
	t.Logf("ingested in %s beside 40 slow pushes", time.Since(start))
	if got := answer(t, slow[0], 5*time.Second); got != http.StatusRequestTimeout {
		t.Errorf("a body not received within the read timeout answered %d, want 408", got)
	}
}

// TestPushBytesInFlightBounded: bodies being read and handled hold at most
// the push byte budget; beyond it a push is answered 429, and once the
// holders are answered the budget is whole again.
func TestPushBytesInFlightBounded(t *testing.T) {
	const body = 256 << 10
	h := newHarness(t, harnessOpts{cfg: Config{PushMaxBody: body, PushMaxInFlightBytes: 3 * 2 * (body + firstChunk), PushReadTimeout: 3 * time.Second}})
	mux := http.NewServeMux()
	mux.Handle("/push/audit", h.pipe.PushHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	// Three pushes that have sent almost all of a large body each hold
	// about a third of the budget, once each has grown its buffer to the
	// whole body (charged twice over): 3 × 2 × firstChunk is left then. A
	// holder still growing its buffer would race the push below for the
	// rest, and one of them would be refused.
	var holders []net.Conn
	for range 3 {
		holders = append(holders, slowPush(t, srv, body, body-1))
	}
	waitFor(t, 5*time.Second, "the holders to be charged for their whole bodies", func() bool {
		const left = 3*2*firstChunk + 1
		if h.pipe.budget.sem.TryAcquire(left) {
			h.pipe.budget.sem.Release(left)
			return false
		}
		return true
	})
	big := bytes.Repeat([]byte(" "), body/2)
	resp, err := srv.Client().Post(srv.URL+"/push/audit", "application/json", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a push beyond the byte budget answered %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for _, c := range holders {
		if got := answer(t, c, 10*time.Second); got != http.StatusRequestTimeout {
			t.Errorf("a holder answered %d, want 408", got)
		}
	}
	if !h.pipe.budget.sem.TryAcquire(3 * 2 * (body + firstChunk)) {
		t.Error("the budget was not given back whole once every push was answered")
	}
}

// TestPushBodyNotEnvelopeCapped: a malformed body is dead-lettered cut to
// the cap, with its reason, length and digest.
func TestPushBodyNotEnvelopeCapped(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{DeadLetterMaxBody: 1000}})
	body := bytes.Repeat([]byte("not an envelope "), 200_000) // 3.2 MB
	if got := push(t, h.pipe.PushHandler(), http.MethodPost, body); got != http.StatusNoContent {
		t.Fatalf("a malformed body answered %d, want 204 (dead-lettered)", got)
	}
	dead := h.drain(deadSub, 500*time.Millisecond, atLeast(1))
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	sum := sha256.Sum256(body)
	want := map[string]string{"bytes": strconv.Itoa(len(body)), "sha256": hex.EncodeToString(sum[:]), "truncated": "true",
		"reason": "bad_envelope", "payload": string(body[:1000])}
	a := dead[0].Attributes
	got := map[string]string{"bytes": a[MetaBodyBytes], "sha256": a[MetaBodySHA256], "truncated": a[MetaBodyTruncated],
		"reason": a["bqobserver_reason"], "payload": string(dead[0].Data)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dead letter (-want +got):\n%s", diff)
	}
}

// TestPushOversizeDeadLettered: a body larger than the intake takes, which
// Pub/Sub would push again at every refusal, is read through and
// dead-lettered with its reason, start, end, length and digest; a body
// larger than any Pub/Sub push is refused with 413, and nothing is kept.
func TestPushOversizeDeadLettered(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{PushMaxBody: 1 << 20, DeadLetterMaxBody: 1000}})
	mux := http.NewServeMux()
	mux.Handle("/push/audit", h.pipe.PushHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	post := func(body io.Reader) int {
		t.Helper()
		resp, err := srv.Client().Post(srv.URL+"/push/audit", "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// An envelope of 5 MB, its message id after its data as Pub/Sub
	// writes it; its end cuts through a character.
	body := []byte(`{"message":{"data":"` + strings.Repeat("QUJD", 5<<18) + `","messageId":"123456789"},"subscription":"projects/p/subscriptions/s"}` + "\xe2\x82")
	if got := post(bytes.NewReader(body)); got != http.StatusNoContent {
		t.Fatalf("a body past the push intake's limit answered %d, want 204 (dead-lettered)", got)
	}
	dead := h.drain(deadSub, 500*time.Millisecond, atLeast(1))
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	sum := sha256.Sum256(body)
	want := map[string]string{"bytes": strconv.Itoa(len(body)), "sha256": hex.EncodeToString(sum[:]), "truncated": "true",
		"reason": "body_too_large", "payload": string(body[:1000]), "tail": events.BoundAttribute(string(body[len(body)-keptTail:]))}
	a := dead[0].Attributes
	got := map[string]string{"bytes": a[MetaBodyBytes], "sha256": a[MetaBodySHA256], "truncated": a[MetaBodyTruncated],
		"reason": a["bqobserver_reason"], "payload": string(dead[0].Data), "tail": a[MetaBodyTail]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dead letter (-want +got):\n%s", diff)
	}
	if !strings.Contains(a[MetaBodyTail], `"messageId":"123456789"`) {
		t.Errorf("the dead letter's tail %q does not name the message", a[MetaBodyTail])
	}
	m := h.pipe.metrics
	if r, dl := testutil.ToFloat64(m.received.WithLabelValues(intakePush)), testutil.ToFloat64(m.deadLettered.WithLabelValues("body_too_large")); r != 1 || dl != 1 {
		t.Errorf("received %g, dead-lettered %g; want 1, 1", r, dl)
	}
	// Past any Pub/Sub push, sent without a length: refused once read
	// that far.
	if got := post(io.MultiReader(bytes.NewReader(body), bytes.NewReader(make([]byte, pushCeiling)))); got != http.StatusRequestEntityTooLarge {
		t.Errorf("a body past any Pub/Sub push answered %d, want 413", got)
	}
	if dead := h.drain(deadSub, 500*time.Millisecond, atLeast(0)); len(dead) != 0 {
		t.Errorf("a refused body was dead-lettered: %d messages", len(dead))
	}
	if !h.pipe.budget.sem.TryAcquire(h.pipe.cfg.PushMaxInFlightBytes) {
		t.Error("the budget was not given back whole once every push was answered")
	}
}
