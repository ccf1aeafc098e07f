package running

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
)

// TestResync appends events that the live feed never delivers, as when the
// projection's subscription was lost: a listed job finishes and another
// starts. Resync makes the list what the log says.
func TestResync(t *testing.T) {
	l := newLog(t)
	now := t0.Add(time.Hour)
	p, _ := newProjection(t, l, now, Config{})
	finishes, stays, starts := jobStory("acme-etl", "US", "finishes"), jobStory("acme-etl", "US", "stays"), jobStory("acme-etl", "US", "starts")
	before := []events.Event{finishes.inserted(now.Add(-time.Minute), events.StateRunning, events.Facts{}),
		stays.inserted(now.Add(-time.Minute), events.StateRunning, events.Facts{})}
	if err := l.Append(t.Context(), before); err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(t.Context(), before...); err != nil {
		t.Fatal(err)
	}
	missed := []events.Event{finishes.completed(now.Add(-30 * time.Second)), starts.inserted(now.Add(-20*time.Second), events.StateRunning, events.Facts{})}
	if err := l.Append(t.Context(), missed); err != nil {
		t.Fatal(err)
	}
	if err := p.Resync(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []events.JobKey{starts.key, stays.key}
	if diff := cmp.Diff(want, listedKeys(p)); diff != "" {
		t.Errorf("listed after the resync (-want +got):\n%s", diff)
	}
}
