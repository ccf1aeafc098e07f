package simulation_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/internal/simulation"
)

// TestRunInRealTime runs a simulation 60 times faster than the wall clock
// for a second and a half, with the jobs API polled meanwhile. No entry may
// come before its time; every entry must decode as meant.
func TestRunInRealTime(t *testing.T) {
	start := time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC)
	const speed = 60
	org := newOrg(t, simulation.Config{Seed: 3, Rate: 5, Speed: speed, Start: start})
	srv := httptest.NewServer(org.JobsAPI())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		poll(ctx, t, srv.URL+"/bigquery/v2/projects/"+org.Projects()[0]+"/jobs?allUsers=true&stateFilter=running")
	})
	wall0 := time.Now()
	n := 0
	err := org.Run(ctx, func(_ context.Context, e simulation.Entry) error {
		due := wall0.Add(time.Duration(float64(e.Published.Sub(start)) / speed))
		if early := due.Sub(time.Now()); early > 5*time.Millisecond {
			t.Errorf("entry published at %v delivered %v early", e.Published, early)
		}
		if err := checkDecode(&e); err != nil {
			t.Error(err)
		}
		n++
		return nil
	})
	wg.Wait()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n < 100 {
		t.Errorf("%d entries in 90 simulated seconds at 5 jobs/s", n)
	}
	if s := org.Stats(); s.Entries != n {
		t.Errorf("stats count %d entries, the sink got %d", s.Entries, n)
	}
	if err := org.Run(context.Background(), nil); !errors.Is(err, simulation.ErrStarted) {
		t.Errorf("a second Run returned %v, want ErrStarted", err)
	}
	for range org.Generate(time.Hour) {
		t.Fatal("Generate yielded an entry after Run")
	}
}

// poll lists jobs until ctx ends, as the product's enrichment would.
func poll(ctx context.Context, t *testing.T, url string) {
	for ctx.Err() == nil {
		resp, err := http.Get(url)
		if err != nil {
			t.Errorf("polling the jobs API: %v", err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("polling the jobs API: %s", resp.Status)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunStopsOnSinkError(t *testing.T) {
	org := newOrg(t, simulation.Config{Seed: 3, Rate: 50, Speed: 1000})
	errFull := errors.New("sink full")
	err := org.Run(context.Background(), func(context.Context, simulation.Entry) error { return errFull })
	if !errors.Is(err, errFull) {
		t.Errorf("Run returned %v, want the sink's error", err)
	}
}

// SetRate changes how many jobs arrive from then on, and refuses a rate
// New would refuse.
func TestSetRate(t *testing.T) {
	o, err := simulation.New(simulation.Config{Seed: 9, Rate: 2})
	if err != nil {
		t.Fatal(err)
	}
	jobsIn := func(d time.Duration) int {
		before := o.Stats().Jobs
		for range o.Generate(d) {
		}
		return o.Stats().Jobs - before
	}
	slow := jobsIn(10 * time.Minute) // about 1,200
	if err := o.SetRate(20); err != nil {
		t.Fatal(err)
	}
	fast := jobsIn(10 * time.Minute) // about 12,000
	if ratio := float64(fast) / float64(slow); ratio < 8 || ratio > 12 {
		t.Errorf("%d jobs in 10 minutes at 2 jobs/s, %d at 20: ratio %.1f, want about 10", slow, fast, ratio)
	}
	for _, bad := range []float64{0, -1, 1e9} {
		if err := o.SetRate(bad); err == nil {
			t.Errorf("SetRate(%g) accepted", bad)
		}
	}
}

// TestRunHoldsBackForASlowSink runs a simulation that produces a few
// hundred entries a wall-clock second (little for the simulation itself,
// even under the race detector) into a sink that takes one every 20 ms for
// four seconds, then keeps up. While the sink is slow, the simulation
// must fall behind real time (Behind says by how much) rather than run
// ahead of what the sink took (which would pile rendered entries up in
// memory), and once the sink keeps up it must catch up. The sink must get
// exactly the entries Generate yields for the same organization: being
// held back skips none and changes none.
func TestRunHoldsBackForASlowSink(t *testing.T) {
	start := time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC)
	const speed = 60
	cfg := simulation.Config{Seed: 5, Rate: 2, Speed: speed, Start: start}
	org := newOrg(t, cfg)
	srv := httptest.NewServer(org.JobsAPI())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		poll(ctx, t, srv.URL+"/bigquery/v2/projects/"+org.Projects()[0]+"/jobs?allUsers=true&stateFilter=running")
	})
	var got stream
	var ahead, behind time.Duration // the most seen
	slowUntil := time.Now().Add(4 * time.Second)
	caughtUp := false
	err := org.Run(ctx, func(_ context.Context, e simulation.Entry) error {
		got.Data = append(got.Data, string(e.Data))
		got.Attributes = append(got.Attributes, e.Attributes)
		got.Published = append(got.Published, e.Published)
		ahead = max(ahead, org.Now().Sub(e.Published))
		b := org.Behind()
		behind = max(behind, b)
		if time.Now().Before(slowUntil) {
			time.Sleep(20 * time.Millisecond)
		} else if b < 100*time.Millisecond {
			caughtUp = true
			cancel()
		}
		return nil
	})
	wg.Wait()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Four seconds at a small part of the pace, the first second of it
	// allowed ahead, leave it about 3 s behind.
	if behind < 2*time.Second {
		t.Errorf("Behind reached %v at most with a sink far too slow for 4 s, want over 2 s", behind)
	}
	// An entry waits for the rest of its batch, which Run took when the
	// simulation was at most a step (one second of wall clock) beyond the
	// batch before; meanwhile the simulation may go one step further.
	if limit := 2*speed*time.Second + time.Second; ahead > limit {
		t.Errorf("the simulation ran %v (simulated) ahead of an entry the sink was taking, want at most %v", ahead, limit)
	}
	t.Logf("behind %v at most, ahead %v at most, %d entries", behind, ahead, len(got.Data))
	if !caughtUp {
		t.Errorf("the simulation did not catch up within 30 s once the sink kept up (behind %v)", org.Behind())
	}
	var want stream
	n := 0
	for e := range newOrg(t, cfg).Generate(24 * time.Hour) {
		if n == len(got.Data) {
			break
		}
		want.Data = append(want.Data, string(e.Data))
		want.Attributes = append(want.Attributes, e.Attributes)
		want.Published = append(want.Published, e.Published)
		n++
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the %d entries Run delivered differ from Generate's (-Generate +Run):\n%.3000s", len(got.Data), diff)
	}
}
