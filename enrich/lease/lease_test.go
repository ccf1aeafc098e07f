package lease_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"

	"github.com/bqobserver/bqobserver/enrich/lease"
	"github.com/bqobserver/bqobserver/internal/testutil/fakeclock"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
)

// backends are the Bigtables every lease test runs on.
var backends = []struct {
	name string
	open func(t *testing.T) *logtest.Bigtable
}{
	{"bttest", func(t *testing.T) *logtest.Bigtable { return logtest.NewBttest(t) }},
	{"emulator", func(t *testing.T) *logtest.Bigtable { return logtest.NewEmulator(t) }},
}

// replicas makes n replicas' leases on one table, named r0, r1, ….
func replicas(t *testing.T, bt *logtest.Bigtable, c *fakeclock.Clock, n int) []*lease.Leases {
	t.Helper()
	var out []*lease.Leases
	for i := range n {
		l, err := lease.New(bt.Client, lease.Config{Table: bt.Table, Holder: fmt.Sprintf("r%d", i), Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// refresh runs one refresh round of each replica, in order.
func refresh(t *testing.T, ls ...*lease.Leases) {
	t.Helper()
	for _, l := range ls {
		if err := l.Refresh(t.Context()); err != nil {
			t.Fatalf("refreshing %s: %v", l.Holder(), err)
		}
	}
}

// owners returns, for each shard, the replicas that may poll its projects.
func owners(ls []*lease.Leases, projects map[int]string) map[int][]string {
	out := map[int][]string{}
	for s, p := range projects {
		for _, l := range ls {
			if l.Owns(p) {
				out[s] = append(out[s], l.Holder())
			}
		}
	}
	return out
}

// projectPerShard names one project in each shard.
func projectPerShard(t *testing.T) map[int]string {
	t.Helper()
	out := map[int]string{}
	for i := 0; len(out) < lease.Shards; i++ {
		p := fmt.Sprintf("project-%d", i)
		if _, ok := out[lease.Shard(p)]; !ok {
			out[lease.Shard(p)] = p
		}
		if i > 100000 {
			t.Fatal("shards never filled")
		}
	}
	return out
}

// check reports shards held by other than exactly one replica, and how
// many each replica holds.
func check(t *testing.T, ls []*lease.Leases, projects map[int]string, alive ...string) map[string]int {
	t.Helper()
	count := map[string]int{}
	for s, hs := range owners(ls, projects) {
		if len(hs) != 1 {
			t.Errorf("shard %d is polled by %v", s, hs)
		}
		count[hs[0]]++
	}
	total := 0
	for _, h := range alive {
		total += count[h]
	}
	if total != lease.Shards {
		t.Errorf("live replicas %v hold %d shards between them (%v), want all %d", alive, total, count, lease.Shards)
	}
	return count
}

func TestSharesAmongReplicas(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c := fakeclock.New(time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC))
			ls := replicas(t, b.open(t), c, 3)
			projects := projectPerShard(t)
			// The first replica alone takes everything; as the others
			// announce themselves it gives up its excess, which the
			// others take once those leases lapse: within a lease and a
			// refresh.
			refresh(t, ls[0])
			if diff := cmp.Diff(check(t, ls, projects, "r0"), map[string]int{"r0": lease.Shards}); diff != "" {
				t.Errorf("one replica (-got +want):\n%s", diff)
			}
			for range 5 {
				c.Advance(lease.DefaultDuration / 4)
				refresh(t, ls...)
			}
			got := check(t, ls, projects, "r0", "r1", "r2")
			for h, n := range got {
				if n < lease.Shards/3-1 || n > lease.Shards/3+1 {
					t.Errorf("%s holds %d shards, not a fair share of %d among 3: %v", h, n, lease.Shards, got)
				}
			}
		})
	}
}

// TestTakeover kills a replica (it stops refreshing without releasing):
// nobody polls its projects until its leases expire, and the others poll
// them by their first refresh after that.
func TestTakeover(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c := fakeclock.New(time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC))
			ls := replicas(t, b.open(t), c, 3)
			projects := projectPerShard(t)
			for range 4 {
				refresh(t, ls...)
				c.Advance(lease.DefaultDuration / 4)
			}
			refresh(t, ls...)
			dead := ls[1]
			var orphans []string
			for _, p := range projects {
				if dead.Owns(p) {
					orphans = append(orphans, p)
				}
			}
			live := []*lease.Leases{ls[0], ls[2]}
			// While the dead replica's leases run, the others keep away.
			for elapsed := time.Duration(0); elapsed < lease.DefaultDuration; elapsed += lease.DefaultDuration / 4 {
				for _, p := range orphans {
					for _, l := range live {
						if l.Owns(p) {
							t.Fatalf("%s polls %s %v after the holder died, before its lease ran out", l.Holder(), p, elapsed)
						}
					}
				}
				c.Advance(lease.DefaultDuration / 4)
				refresh(t, live...)
			}
			c.Advance(lease.DefaultDuration / 4)
			refresh(t, live...)
			check(t, live, projects, "r0", "r2")
		})
	}
}

// TestExcessLapses: a replica above its share (another joined) stops
// polling the excess at once, but no other replica takes those shards
// before the polls it started under them have reached their deadline and
// a quarter of a lease more (the margin for clocks that differ).
func TestExcessLapses(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c := fakeclock.New(time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC))
			ls := replicas(t, b.open(t), c, 2)
			projects := projectPerShard(t)
			refresh(t, ls[0])
			c.Advance(lease.DefaultDuration / 4)
			refresh(t, ls[0])
			deadline := map[string]time.Time{} // of a poll started now
			for _, p := range projects {
				deadline[p], _ = ls[0].Until(p)
			}
			refresh(t, ls[1], ls[0]) // r1 joins; r0 gives up its excess
			var excess []string
			for _, p := range projects {
				if !ls[0].Owns(p) {
					excess = append(excess, p)
				}
			}
			if len(excess) != lease.Shards/2 {
				t.Fatalf("r0 gave up %d shards, want %d", len(excess), lease.Shards/2)
			}
			for range 8 {
				refresh(t, ls...)
				for _, p := range excess {
					if ls[1].Owns(p) && c.Now().Before(deadline[p].Add(lease.DefaultDuration/4)) {
						t.Fatalf("r1 polls %s at %v, while r0's poll of it may run until %v", p, c.Now(), deadline[p])
					}
				}
				c.Advance(lease.DefaultDuration / 4)
			}
			got := check(t, ls, projects, "r0", "r1")
			if diff := cmp.Diff(got, map[string]int{"r0": lease.Shards / 2, "r1": lease.Shards / 2}); diff != "" {
				t.Errorf("two lease durations after r1 joined (-got +want):\n%s", diff)
			}
		})
	}
}

// TestRelease hands a stopping replica's projects over at the next refresh.
func TestRelease(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c := fakeclock.New(time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC))
			ls := replicas(t, b.open(t), c, 2)
			projects := projectPerShard(t)
			for range 3 {
				refresh(t, ls...)
				c.Advance(time.Second)
			}
			if err := ls[0].Release(t.Context()); err != nil {
				t.Fatal(err)
			}
			if ls[0].Held() != 0 {
				t.Errorf("%d shards held after release", ls[0].Held())
			}
			c.Advance(time.Second)
			refresh(t, ls[1])
			if diff := cmp.Diff(check(t, ls, projects, "r1"), map[string]int{"r1": lease.Shards}); diff != "" {
				t.Errorf("after the release (-got +want):\n%s", diff)
			}
		})
	}
}

// TestLostLease: a replica that could not renew in time and whose lease was
// taken learns so at its next refresh, and stops polling at once.
func TestLostLease(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c := fakeclock.New(time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC))
			ls := replicas(t, b.open(t), c, 2)
			projects := projectPerShard(t)
			refresh(t, ls[0])
			c.Advance(2 * lease.DefaultDuration) // r0 stalls; its leases and membership lapse
			refresh(t, ls[1])
			if diff := cmp.Diff(check(t, ls, projects, "r1"), map[string]int{"r1": lease.Shards}); diff != "" {
				t.Errorf("after the stall (-got +want):\n%s", diff)
			}
			refresh(t, ls[0]) // r0 comes back: it may not renew what r1 took
			check(t, ls, projects, "r0", "r1")
		})
	}
}

// TestUntil: a holder polls until a quarter of the lease before its expiry.
func TestUntil(t *testing.T) {
	bt := logtest.NewBttest(t)
	start := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	c := fakeclock.New(start)
	l := replicas(t, bt, c, 1)[0]
	refresh(t, l)
	until, ok := l.Until("any-project")
	if want := start.Add(lease.DefaultDuration * 3 / 4); !ok || !until.Equal(want) {
		t.Errorf("Until = %v, %v; want %v, true", until, ok, want)
	}
	c.Advance(lease.DefaultDuration * 3 / 4)
	if l.Owns("any-project") {
		t.Error("the holder still polls at the end of its hold")
	}
}

func TestConfigValidate(t *testing.T) {
	err := lease.Config{Holder: "a#b", Duration: time.Hour}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 3 {
		t.Errorf("%d problems, want 3 (table, holder, duration): %v", n, err)
	}
	if err := (lease.Config{Table: "t"}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestConcurrentTakes lets three replicas race for the same free shards
// again and again: the conditional mutation gives each shard to one.
func TestConcurrentTakes(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			bt := b.open(t)
			c := fakeclock.New(time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC))
			projects := projectPerShard(t)
			for trial := range 10 {
				var ls []*lease.Leases
				for i := range 3 {
					l, err := lease.New(bt.Client, lease.Config{Table: bt.Table, Holder: fmt.Sprintf("t%d-r%d", trial, i), Now: c.Now})
					if err != nil {
						t.Fatal(err)
					}
					ls = append(ls, l)
				}
				var wg sync.WaitGroup
				for _, l := range ls {
					wg.Go(func() {
						if err := l.Refresh(t.Context()); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
				for s, hs := range owners(ls, projects) {
					if len(hs) > 1 {
						t.Fatalf("trial %d: shard %d is polled by %v", trial, s, hs)
					}
				}
				c.Advance(2 * lease.DefaultDuration) // every lease and member lapses
			}
		})
	}
}

// TestRunWaitsUntilReady: a replica whose list of open jobs is not built
// yet neither announces itself nor takes a lease, so another keeps every
// shard; once ready, it takes its share.
func TestRunWaitsUntilReady(t *testing.T) {
	bt := logtest.NewBttest(t)
	const duration = 400 * time.Millisecond
	var ready atomic.Bool
	r0, err := lease.New(bt.Client, lease.Config{Table: bt.Table, Holder: "r0", Duration: duration})
	if err != nil {
		t.Fatal(err)
	}
	r1, err := lease.New(bt.Client, lease.Config{Table: bt.Table, Holder: "r1", Duration: duration, Ready: ready.Load})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, l := range []*lease.Leases{r0, r1} {
		wg.Go(func() { l.Run(ctx, nil) }) // a failed refresh is retried at the next tick
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	time.Sleep(4 * duration)
	if n, m := r0.Held(), r1.Held(); n != lease.Shards || m != 0 {
		t.Errorf("before r1 is ready: r0 holds %d shards and r1 %d, want %d and 0", n, m, lease.Shards)
	}
	ready.Store(true)
	for deadline := time.Now().Add(20 * duration); r1.Held() < lease.Shards/2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("r1 holds %d shards %s after it is ready, want %d", r1.Held(), 20*duration, lease.Shards/2)
		}
	}
}

// TestRunOnHangingBigtable runs a replica's leases while Bigtable's
// conditional mutations hang: each refresh gives up within its bound and
// says so, nothing is held, and once Bigtable answers again the replica
// takes every lease at its next refreshes.
func TestRunOnHangingBigtable(t *testing.T) {
	var hang atomic.Bool
	hang.Store(true)
	addr := logtest.StartBttest(t, grpc.ChainUnaryInterceptor(
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if info.FullMethod == "/google.bigtable.v2.Bigtable/CheckAndMutateRow" && hang.Load() {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return handler(ctx, req)
		}))
	bt := logtest.Open(t, addr)
	const duration = 400 * time.Millisecond
	l, err := lease.New(bt.Client, lease.Config{Table: bt.Table, Holder: "r0", Duration: duration})
	if err != nil {
		t.Fatal(err)
	}
	failures := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		l.Run(ctx, func(err error) {
			select {
			case failures <- err:
			default:
			}
		})
	}()
	defer func() {
		cancel()
		<-stopped
	}()
	select {
	case err := <-failures:
		t.Logf("a refresh while Bigtable hangs: %v", err)
	case <-time.After(20 * duration):
		t.Fatalf("no refresh failed within %s while Bigtable's conditional mutations hang", 20*duration)
	}
	if n := l.Held(); n != 0 {
		t.Errorf("holds %d leases while Bigtable hangs, want 0", n)
	}
	hang.Store(false)
	deadline := time.Now().Add(20 * duration)
	for l.Held() < lease.Shards {
		if time.Now().After(deadline) {
			t.Fatalf("holds %d of %d leases %s after Bigtable answers again", l.Held(), lease.Shards, 20*duration)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
