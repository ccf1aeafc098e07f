package simulation_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/simulation"
)

// delivered is what a subscriber saw of a simulated stretch of time.
type delivered struct {
	entries []simulation.Entry
	stats   simulation.Stats
	end     time.Time
}

func deliver(t *testing.T, d *simulation.Delivery, span time.Duration) delivered {
	t.Helper()
	org, err := simulation.New(simulation.Config{Seed: 5, Rate: 0.25, Delivery: d})
	if err != nil {
		t.Fatal(err)
	}
	var out delivered
	for e := range org.Generate(span) {
		out.entries = append(out.entries, e)
	}
	out.stats, out.end = org.Stats(), org.Now()
	return out
}

// measure counts the imperfections a subscriber can observe: entries seen
// twice, entries that came more than 5 s after they were written (the
// usual path takes under 1 s to Cloud Logging and 1 s plus a jitter of up to 1 s to the subscriber), jobs
// whose completion came before their insertion in one format, and jobs
// inserted long before the end whose completion never came.
type measure struct {
	Redelivered, Late, Reordered, Unfinished int
}

// jobFormat is one job's entries in one format.
type jobFormat struct {
	job    events.JobKey
	format string
}

// jobFormats is what arrived of each job in each format.
type jobFormats struct {
	first     map[jobFormat]events.Kind
	inserted  map[jobFormat]time.Time
	completed map[jobFormat]bool
}

func (d *delivered) measure() measure {
	var m measure
	seen := map[string]bool{}
	jf := jobFormats{first: map[jobFormat]events.Kind{}, inserted: map[jobFormat]time.Time{}, completed: map[jobFormat]bool{}}
	for _, e := range d.entries {
		if seen[string(e.Data)] {
			m.Redelivered++
			continue
		}
		seen[string(e.Data)] = true
		if len(e.Meant) == 0 {
			continue
		}
		if e.Published.Sub(e.Meant[0].Time) > 5*time.Second {
			m.Late++
		}
		jf.note(e.Format, &e.Meant[0])
	}
	m.Reordered, m.Unfinished = jf.reordered(), jf.unfinished(d.end)
	return m
}

func (jf *jobFormats) note(format string, ev *events.Event) {
	k := jobFormat{ev.Job, format}
	if _, ok := jf.first[k]; !ok {
		jf.first[k] = ev.Kind
	}
	switch ev.Kind {
	case events.KindInserted:
		jf.inserted[k] = ev.Time
	case events.KindCompleted:
		jf.completed[k] = true
	}
}

// reordered counts the job formats whose completion came first.
func (jf *jobFormats) reordered() int {
	n := 0
	for k, kind := range jf.first {
		if kind == events.KindCompleted && !jf.inserted[k].IsZero() {
			n++
		}
	}
	return n
}

// unfinished counts the job formats inserted long before end (jobs run for
// up to 7 hours) whose completion never came.
func (jf *jobFormats) unfinished(end time.Time) int {
	n := 0
	for k, at := range jf.inserted {
		if !jf.completed[k] && at.Before(end.Add(-8*time.Hour)) {
			n++
		}
	}
	return n
}

func TestDeliveryImperfectionsOff(t *testing.T) {
	d := deliver(t, &simulation.Delivery{}, 24*time.Hour)
	if got := d.measure(); got != (measure{}) {
		t.Errorf("perfect delivery showed imperfections: %+v", got)
	}
	for i := 1; i < len(d.entries); i++ {
		if d.entries[i].Published.Before(d.entries[i-1].Published) {
			t.Fatalf("entry %d published %v before its predecessor %v", i, d.entries[i].Published, d.entries[i-1].Published)
		}
	}
	s := d.stats
	if s.Redeliveries+s.Delayed+s.Lost+s.Reordered != 0 {
		t.Errorf("perfect delivery counted imperfections: %+v", s)
	}
}

func TestDeliveryImperfectionsOn(t *testing.T) {
	cfg := simulation.DefaultDelivery()
	d := deliver(t, &cfg, 24*time.Hour)
	got := d.measure()
	s := d.stats
	unique := s.Entries - s.Redeliveries
	t.Logf("%d entries delivered (%d unique) from %d jobs; observed %+v; counted %d redeliveries, %d delayed, %d reordered jobs, %d lost completions",
		s.Entries, unique, s.Jobs, got, s.Redeliveries, s.Delayed, s.Reordered, s.Lost)
	within := func(name string, n int, share float64, of int) {
		want := share * float64(of)
		if float64(n) < 0.6*want || float64(n) > 1.4*want {
			t.Errorf("%s: %d, want about %.0f (%g of %d)", name, n, want, share, of)
		}
	}
	within("redelivered entries", got.Redelivered, cfg.DuplicateShare, unique)
	within("late entries", got.Late, cfg.DelayShare, unique)
	within("lost completion entries", s.Lost, cfg.LostCompletionShare*2, s.Jobs) // a completion in each format
	if got.Redelivered != s.Redeliveries {
		t.Errorf("observed %d redeliveries, counted %d", got.Redelivered, s.Redeliveries)
	}
	// Late entries reorder some jobs too, on top of those held back.
	if s.Reordered == 0 || got.Reordered < s.Reordered {
		t.Errorf("observed %d job formats completed before inserted; %d jobs were held back to be reordered", got.Reordered, s.Reordered)
	}
	if got.Unfinished == 0 || got.Unfinished > s.Lost {
		t.Errorf("observed %d jobs never completed; %d completion entries were lost", got.Unfinished, s.Lost)
	}
}

// TestDeliveryLeavesActivityAlone checks that imperfections change how
// entries arrive, never what they say: with and without them, the same
// entries are written, less the lost completions.
func TestDeliveryLeavesActivityAlone(t *testing.T) {
	span := 6 * time.Hour
	perfect := deliver(t, &simulation.Delivery{}, span)
	cfg := simulation.DefaultDelivery()
	imperfect := deliver(t, &cfg, span)
	cutoff := perfect.end.Add(-30 * time.Minute) // later entries may still be on their way
	written := func(d delivered) map[string]string {
		out := map[string]string{}
		for _, e := range d.entries {
			if len(e.Meant) > 0 && e.Meant[0].Time.Before(cutoff) {
				out[e.Meant[0].ID] = string(e.Data)
			}
		}
		return out
	}
	want, got := written(perfect), written(imperfect)
	lost := 0
	for id := range want {
		if _, ok := got[id]; !ok {
			lost++
			delete(want, id)
			if !containsKind(perfect.entries, id, events.KindCompleted) {
				t.Errorf("entry %s, not a completion, was never delivered", id)
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries delivered with imperfections differ from those without (-perfect +imperfect):\n%s", diff)
	}
	if lost == 0 || lost > imperfect.stats.Lost {
		t.Errorf("%d entries missing with imperfections; %d completions were lost", lost, imperfect.stats.Lost)
	}
}

func containsKind(entries []simulation.Entry, id string, kind events.Kind) bool {
	for _, e := range entries {
		if len(e.Meant) > 0 && e.Meant[0].ID == id {
			return e.Meant[0].Kind == kind
		}
	}
	return false
}
