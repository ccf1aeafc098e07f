package running

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/events"
)

// Tombstones remember a finished job for their TTL from its last finish,
// and name the projects they remember jobs of.
func TestTombstones(t *testing.T) {
	ts := newTombstones(time.Minute)
	key := func(p string, i int) events.JobKey {
		return events.JobKey{Project: p, Location: "US", JobID: fmt.Sprintf("job_%d", i)}
	}
	for i := range 3000 {
		ts.add(key("a", i), t0)
	}
	ts.add(key("b", 0), t0.Add(30*time.Second))
	ts.add(key("a", 7), t0.Add(30*time.Second)) // finished again: remembered from then
	for _, c := range []struct {
		at      time.Time
		has     []events.JobKey
		hasNot  []events.JobKey
		project []string
	}{
		{t0.Add(59 * time.Second), []events.JobKey{key("a", 0), key("a", 2999), key("b", 0)}, []events.JobKey{key("a", 3000), key("b", 1), {Project: "a", Location: "EU", JobID: "job_0"}}, []string{"a", "b"}},
		{t0.Add(61 * time.Second), []events.JobKey{key("a", 7), key("b", 0)}, []events.JobKey{key("a", 0), key("a", 2999)}, []string{"a", "b"}},
		{t0.Add(91 * time.Second), nil, []events.JobKey{key("a", 7), key("b", 0)}, nil},
	} {
		ts.expire(c.at)
		for _, k := range c.has {
			if !ts.has(k) {
				t.Errorf("at %s: %v forgotten", c.at.Sub(t0), k)
			}
		}
		for _, k := range c.hasNot {
			if ts.has(k) {
				t.Errorf("at %s: %v remembered", c.at.Sub(t0), k)
			}
		}
		var projects []string
		ts.eachProject(func(p string) { projects = append(projects, p) })
		slices.Sort(projects)
		if !slices.Equal(projects, c.project) {
			t.Errorf("at %s: projects %v, want %v", c.at.Sub(t0), projects, c.project)
		}
	}
	if len(ts.at) != 0 || len(ts.queue)-ts.head != 0 {
		t.Errorf("%d tombstones and %d queued left after the TTL", len(ts.at), len(ts.queue)-ts.head)
	}
}
