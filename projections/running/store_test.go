package running

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/projections/access"
)

// mixedStories returns the events of n jobs: some queued, some running with
// progress, some finished, some failed.
func mixedStories(n int, start time.Time) []events.Event {
	var evs []events.Event
	for i := range n {
		s := jobStory(fmt.Sprintf("proj-%d", i%3), []string{"US", "EU"}[i%2], fmt.Sprintf("job_%03d", i))
		at := start.Add(time.Duration(i) * time.Second)
		evs = append(evs, s.inserted(at, events.StatePending, events.Facts{Principal: fmt.Sprintf("user%d@example.com", i%4),
			JobType: events.JobTypeQuery, Query: fmt.Sprintf("SELECT %d FROM `t.d.x`", i), Labels: map[string]string{"n": fmt.Sprint(i % 2)}}))
		if i%4 == 0 {
			continue // stays queued
		}
		evs = append(evs, s.started(at.Add(time.Second)), s.progress(at.Add(5*time.Second), int64(i)*1000, int64(i)<<20))
		switch i % 4 {
		case 2:
			evs = append(evs, s.completed(at.Add(9*time.Second)))
		case 3:
			done := s.completed(at.Add(8 * time.Second))
			done.Error = &events.JobError{Code: "stopped", Message: "cancelled"}
			evs = append(evs, done)
		}
	}
	return evs
}

// want is the list the fold says: every job whose fold is not DONE.
func wantList(evs []events.Event, preview int) []*jobJSON {
	byJob := map[events.JobKey][]events.Event{}
	for _, e := range evs {
		byJob[e.Job] = append(byJob[e.Job], e)
	}
	var out []*jobJSON
	for k, jevs := range byJob {
		j := events.Fold(k, jevs)
		if !j.Done() {
			out = append(out, jobOf(&view{job: j}, preview))
		}
	}
	sortJobs(out)
	return out
}

// listed returns every job of p, by id, as the list encodes them.
func listed(t testing.TB, p *Projection) []*jobJSON {
	t.Helper()
	pg := p.store.list(&listQuery{filter: filter{scope: access.ScopeOf(access.Anonymous())}, order: runningKind.order, limit: 1 << 20}, p.cfg.Now(), p.cfg.QueryPreview, nil)
	var out []*jobJSON
	if err := json.Unmarshal(pg.jobs, &out); err != nil {
		t.Fatalf("decoding the list: %v\n%s", err, pg.jobs)
	}
	if len(out) != pg.n {
		t.Errorf("the page says it holds %d jobs, its JSON %d", pg.n, len(out))
	}
	sortJobs(out)
	return out
}

func TestApplyAnyOrderAnyDuplicates(t *testing.T) {
	evs := mixedStories(24, t0)
	want := wantList(evs, 1024)
	l := newLog(t)
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			p, _ := newProjection(t, l, t0.Add(time.Minute), Config{})
			shuffled := slices.Clone(evs)
			for i := range shuffled {
				if r.IntN(3) == 0 {
					shuffled = append(shuffled, shuffled[i]) // a redelivery
				}
			}
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			if err := p.Apply(t.Context(), shuffled...); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, listed(t, p)); diff != "" {
				t.Errorf("list after %d events in a random order (-want +got):\n%s", len(shuffled), diff)
			}
		})
	}
}

func TestFinishedJobsStayFinished(t *testing.T) {
	s := jobStory("p", "US", "late")
	ins := s.inserted(t0, events.StateRunning, events.Facts{Principal: "ann@example.com"})
	prog := s.progress(t0.Add(time.Second), 10, 10)
	done := s.completed(t0.Add(2 * time.Second))

	t.Run("a late duplicate within the tombstone memory", func(t *testing.T) {
		p, c := newProjection(t, nil, t0.Add(time.Minute), Config{})
		mustApply(t, p, ins, done)
		c.Advance(10 * time.Minute)
		mustApply(t, p, ins, prog)
		if n := p.Len(); n != 0 {
			t.Errorf("got %d jobs after late duplicates of a finished job, want 0", n)
		}
	})
	// In the next two the log gets the job's history after the rebuild, so
	// only asking the log about the old event can tell.
	t.Run("an old event of a job finished long ago", func(t *testing.T) {
		l := newLog(t)
		p, _ := newProjection(t, l, t0.Add(5*time.Hour), Config{})
		if err := l.Append(t.Context(), []events.Event{ins, done}); err != nil {
			t.Fatal(err)
		}
		mustApply(t, p, prog)
		if n := p.Len(); n != 0 {
			t.Errorf("got %d jobs after an old event of a job the log knows finished, want 0", n)
		}
	})
	t.Run("an old event of a job still running", func(t *testing.T) {
		l := newLog(t)
		p, _ := newProjection(t, l, t0.Add(5*time.Hour), Config{})
		if err := l.Append(t.Context(), []events.Event{ins}); err != nil {
			t.Fatal(err)
		}
		mustApply(t, p, prog)
		got := listed(t, p)
		want := wantList([]events.Event{ins, prog}, 1024)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("list (-want +got):\n%s", diff)
		}
	})
}

func mustApply(t testing.TB, p *Projection, evs ...events.Event) {
	t.Helper()
	if err := p.Apply(t.Context(), evs...); err != nil {
		t.Fatal(err)
	}
}

func TestStale(t *testing.T) {
	s := jobStory("p", "US", "quiet")
	p, c := newProjection(t, nil, t0.Add(time.Minute), Config{StaleAfter: time.Hour})
	mustApply(t, p, s.inserted(t0, events.StateRunning, events.Facts{}))
	staleOf := func() bool {
		v, ok := p.store.get(s.key)
		if !ok {
			t.Fatal("job left the list")
		}
		return v.stale
	}
	steps := []struct {
		name  string
		do    func()
		stale bool
	}{
		{"fresh", func() {}, false},
		{"quiet for less than the bound", func() { c.Advance(50 * time.Minute); p.store.sweep(c.Now()) }, false},
		{"quiet for longer than the bound", func() { c.Advance(20 * time.Minute); p.store.sweep(c.Now()) }, true},
		{"news", func() { mustApply(t, p, s.progress(c.Now().Add(-time.Second), 5, 5)) }, false},
		{"quiet again", func() { c.Advance(2 * time.Hour); p.store.sweep(c.Now()) }, true},
	}
	for _, st := range steps {
		st.do()
		if got := staleOf(); got != st.stale {
			t.Errorf("%s: stale = %v, want %v", st.name, got, st.stale)
		}
	}
}

// TestSameJobSeesEveryField makes sure a change to any field of a job is
// published: it sets each field in turn and expects sameJob to notice.
func TestSameJobSeesEveryField(t *testing.T) {
	var base events.Job
	fields := leafFields(reflect.TypeOf(base), nil)
	if len(fields) < 30 {
		t.Fatalf("found only %d fields of events.Job", len(fields))
	}
	for _, path := range fields {
		j := base
		v := reflect.ValueOf(&j).Elem().FieldByIndex(path)
		setNonZero(t, v)
		if sameJob(&base, &j) {
			t.Errorf("sameJob misses a change to field %s", reflect.TypeOf(base).FieldByIndex(path).Name)
		}
	}
}

// leafFields returns the index paths of the exported fields of t, entering
// embedded and key structs (times count as leaves).
func leafFields(t reflect.Type, prefix []int) [][]int {
	var out [][]int
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		path := append(slices.Clone(prefix), i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Time{}) {
			out = append(out, leafFields(f.Type, path)...)
			continue
		}
		out = append(out, path)
	}
	return out
}

func setNonZero(t *testing.T, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Map:
		v.Set(reflect.ValueOf(map[string]string{"k": "v"}))
	case reflect.Slice:
		v.Set(reflect.ValueOf([]string{"x"}))
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		setNonZero(t, p.Elem())
		v.Set(p)
	case reflect.Int64:
		v.SetInt(7)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(t0))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				setNonZero(t, v.Field(i))
			}
		}
	default:
		t.Fatalf("no non-zero value for kind %s", v.Kind())
	}
}

// TestHandle feeds the live feed's handler the same event twice: the
// second delivery changes nothing.
func TestHandle(t *testing.T) {
	p, _ := newProjection(t, nil, t0.Add(time.Minute), Config{})
	ev := jobStory("p", "US", "msg").inserted(t0, events.StateRunning, events.Facts{Principal: "ann@example.com"})
	for _, name := range []string{"an event", "the same event again"} {
		if err := p.Handle(t.Context(), ev); err != nil {
			t.Errorf("%s: Handle = %v", name, err)
		}
		if got, want := p.Len(), 1; got != want {
			t.Errorf("%s: %d jobs listed, want %d", name, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := Config{StaleAfter: -1, RebuildBatch: -1, StreamReplay: 3, RetryAfter: time.Millisecond}
	cfg.setDefaults()
	err := cfg.Validate()
	for _, want := range []string{"stale after", "rebuild batch", "stream replay", "retry after"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %q", err, want)
		}
	}
	var ok Config
	ok.setDefaults()
	if err := ok.Validate(); err != nil {
		t.Errorf("defaults: Validate() = %v", err)
	}
}

// TestReadersWhileTheFeedWrites runs every kind of request while events are
// applied (run it with -race), then checks the list is the fold of all.
func TestReadersWhileTheFeedWrites(t *testing.T) {
	now := t0.Add(3 * time.Hour)
	evs := orgEvents(rand.New(rand.NewPCG(13, 14)), 400, now)
	for i := range evs {
		evs[i].Time = now.Add(-time.Duration(len(evs)-i) * time.Millisecond) // live: recent
	}
	p, c := newProjection(t, nil, now, Config{})
	h := asAdmin(p.Handler())
	done := make(chan struct{})
	var wg sync.WaitGroup
	paths := []string{"/api/v1/jobs?q=select&sort=-slot_ms", "/api/v1/summary", "/_ah/get-handlers/v1/jobs",
		"/api/v1/jobs?state=running&limit=3", "/api/v1/jobs/acme/US/job_0001"}
	for _, path := range paths {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if w := get(t, h, path); w.Code != 200 && w.Code != 404 {
					t.Errorf("GET %s: %d %s", path, w.Code, w.Body)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			p.store.sweep(c.Now())
		}
	})
	mustApply(t, p, evs...)
	close(done)
	wg.Wait()
	if diff := cmp.Diff(wantList(evs, 1024), listed(t, p)); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
}
