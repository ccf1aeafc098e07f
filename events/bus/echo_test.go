package bus

import (
	"fmt"
	"testing"
	"time"
)

// echoAt returns an armed Echo whose clock reads *now.
func echoAt(now *time.Time) *Echo {
	e := NewEcho()
	e.now = func() time.Time { return *now }
	e.arm()
	return e
}

func TestEchoBehind(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	now := t0
	e := echoAt(&now)
	step := func(d time.Duration) { now = now.Add(d) }
	want := func(what string, d time.Duration) {
		t.Helper()
		if got := e.Behind(now); got != d {
			t.Errorf("%s: behind %s, want %s", what, got, d)
		}
	}
	want("nothing published", 0)
	e.publishing([]string{"a", "b"})
	step(time.Second)
	e.publishing([]string{"c"})
	step(4 * time.Second)
	want("a, b and c out", 5*time.Second)
	e.received("b")
	want("b back, a still out", 5*time.Second)
	e.received("a")
	want("a and b back", 4*time.Second)
	e.failed([]string{"c"})
	want("c failed", 0)

	e.publishing([]string{"d"})
	e.received("d") // before its publisher heard it was published
	step(time.Minute)
	want("d back at once", 0)

	e.publishing([]string{"d"}) // published again, after it came back
	step(2 * time.Second)
	e.received("x") // not this process's
	want("d out again", 2*time.Second)
	e.received("d")
	e.received("d") // redelivered
	want("d back again", 0)

	e.publishing([]string{"e"})
	step(3 * time.Second)
	e.Reset()
	want("after a reset", 0)
	e.publishing([]string{"f"})
	step(time.Second)
	want("f out after the reset", time.Second)
}

func TestEchoFollowsNothingUntilArmed(t *testing.T) {
	now := time.Now()
	e := NewEcho()
	e.now = func() time.Time { return now }
	e.publishing([]string{"a"})
	if got := e.Behind(now.Add(time.Hour)); got != 0 {
		t.Errorf("unarmed: behind %s, want 0", got)
	}
	var none *Echo
	none.publishing([]string{"a"})
	none.received("a")
	none.Reset()
	if got := none.Behind(now); got != 0 {
		t.Errorf("nil echo: behind %s, want 0", got)
	}
}

// An echo follows at most maxEchoed events, the oldest, and its queue stays
// bounded while events come back, even if Behind is never asked.
func TestEchoBounds(t *testing.T) {
	t0 := time.Now()
	now := t0
	e := echoAt(&now)
	for i := range 3 * maxEchoed {
		id := fmt.Sprint("ok-", i)
		e.publishing([]string{id})
		e.received(id)
	}
	if n := len(e.queue) - e.head; n > 2*maxEchoed+1 {
		t.Errorf("queue holds %d entries after every event came back, want at most %d", n, 2*maxEchoed+1)
	}
	for i := range maxEchoed + 10 {
		e.publishing([]string{fmt.Sprint("lost-", i)})
		now = now.Add(time.Millisecond)
	}
	if len(e.pending) != maxEchoed {
		t.Errorf("%d events followed, want at most %d", len(e.pending), maxEchoed)
	}
	if got, want := e.Behind(now), now.Sub(t0); got != want {
		t.Errorf("behind %s, want the oldest's age %s", got, want)
	}
}

// A consumer's lag is never less than its echo's.
func TestLagWithEcho(t *testing.T) {
	now := time.Now()
	l, err := NewLag("h", nil)
	if err != nil {
		t.Fatal(err)
	}
	l.echo = echoAt(&now)
	l.echo.publishing([]string{"a"})
	now = now.Add(7 * time.Second)
	if got := l.Behind(now); got != 7*time.Second {
		t.Errorf("lag %s with an event out for 7s, want 7s", got)
	}
	l.echo.received("a")
	if got := l.Behind(now); got != 0 {
		t.Errorf("lag %s once it came back, want 0", got)
	}
}

// BenchmarkEcho measures what the echo adds to each event: publishing it
// and receiving it back, with 500 events out at any time (a tenth of a
// second at 5,000 events a second), and the lag asked every 1,000 events.
func BenchmarkEcho(b *testing.B) {
	e := NewEcho()
	e.arm()
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = fmt.Sprintf("%016x-%08d", i*7919, i)
	}
	i := 0
	for b.Loop() {
		e.publishing(ids[i%len(ids) : i%len(ids)+1])
		if i >= 500 {
			e.received(ids[(i-500)%len(ids)])
		}
		if i%1000 == 0 {
			e.Behind(time.Now())
		}
		i++
	}
}
