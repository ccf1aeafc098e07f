package running

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
)

// sse is one received Server-Sent Event.
type sse struct {
	id, name, data string
}

// sseClient reads a stream in a goroutine the test owns.
type sseClient struct {
	resp   *http.Response
	events chan sse
	done   chan struct{}
	cancel context.CancelFunc
}

func openStream(t *testing.T, srv *httptest.Server, query string, header ...string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1/stream?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	c := &sseClient{resp: resp, events: make(chan sse, 1<<16), done: make(chan struct{}), cancel: cancel}
	go c.read()
	t.Cleanup(c.close)
	return c
}

func (c *sseClient) read() {
	defer close(c.done)
	defer close(c.events)
	r := bufio.NewReader(c.resp.Body)
	var ev sse
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		field, value, _ := strings.Cut(line, ": ")
		switch field {
		case "id":
			ev.id = value
		case "event":
			ev.name = value
		case "data":
			ev.data = value
		case "":
			if ev.name != "" {
				c.events <- ev
			}
			ev = sse{}
		}
	}
}

func (c *sseClient) close() {
	c.cancel()
	c.resp.Body.Close()
	<-c.done
}

// next returns the next event other than a heartbeat.
func (c *sseClient) next(t *testing.T) sse {
	t.Helper()
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatal("the stream ended")
			}
			if ev.name != evHeartbeat {
				return ev
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no event within 5s")
		}
	}
}

// quiet checks that no event but heartbeats comes for a moment.
func (c *sseClient) quiet(t *testing.T) {
	t.Helper()
	timeout := time.After(100 * time.Millisecond)
	for {
		select {
		case ev := <-c.events:
			if ev.name != evHeartbeat {
				t.Errorf("unexpected event %s %s", ev.name, ev.data)
			}
		case <-timeout:
			return
		}
	}
}

// said is what an event says, for comparing: its name, the job and, for a
// removal, the reason.
type said struct{ Name, Job, Reason string }

func (ev sse) said(t *testing.T) said {
	t.Helper()
	var d struct {
		Key    keyJSON `json:"key"`
		Reason string  `json:"reason"`
	}
	if err := json.Unmarshal([]byte(ev.data), &d); err != nil {
		t.Fatalf("event %s: data %q: %v", ev.name, ev.data, err)
	}
	return said{Name: ev.name, Job: d.Key.JobID, Reason: d.Reason}
}

func (c *sseClient) expect(t *testing.T, want ...said) []sse {
	t.Helper()
	var got []said
	var raw []sse
	for range want {
		ev := c.next(t)
		raw = append(raw, ev)
		got = append(got, ev.said(t))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stream events (-want +got):\n%s", diff)
	}
	return raw
}

func TestStreamFollowsItsFilters(t *testing.T) {
	now := t0.Add(time.Hour)
	p, _ := newProjection(t, nil, now, Config{})
	srv := httptest.NewServer(asAdmin(p.Handler()))
	t.Cleanup(srv.Close)
	c := openStream(t, srv, "project=acme-etl&state=running&label=env=prod")

	a, b, d := jobStory("acme-etl", "US", "a"), jobStory("acme-bi", "US", "b"), jobStory("acme-etl", "EU", "d")
	prod := events.Facts{Labels: map[string]string{"env": "prod"}}
	prog := a.progress(now.Add(2*time.Second), 10, 10)
	steps := []struct {
		name string
		evs  []events.Event
		want []said
	}{
		{"queued: not running yet", []events.Event{a.inserted(now, events.StatePending, prod)}, nil},
		{"starts running", []events.Event{a.started(now.Add(time.Second))}, []said{{evAdded, "a", ""}}},
		{"progress", []events.Event{prog}, []said{{evChanged, "a", ""}}},
		{"a duplicate changes nothing", []events.Event{prog}, nil},
		{"another project", []events.Event{b.inserted(now, events.StateRunning, prod)}, nil},
		{"arrives running", []events.Event{d.inserted(now, events.StateRunning, prod)}, []said{{evAdded, "d", ""}}},
		{"labels change", []events.Event{d.event(events.KindProgress, now.Add(time.Minute), events.StateRunning,
			events.Facts{Labels: map[string]string{"env": "dev"}})}, []said{{evRemoved, "d", "unmatched"}}},
		{"finishes", []events.Event{a.completed(now.Add(3 * time.Second))}, []said{{evRemoved, "a", "done"}}},
	}
	var last sse
	for _, st := range steps {
		mustApply(t, p, st.evs...)
		if len(st.want) == 0 {
			c.quiet(t)
			continue
		}
		last = c.expect(t, st.want...)[0]
	}
	var removed struct {
		Job jobJSON `json:"job"`
	}
	if err := json.Unmarshal([]byte(last.data), &removed); err != nil || removed.Job.State != "DONE" || removed.Job.EndTime.IsZero() {
		t.Errorf("the removal of a finished job carries %s, want the job's final state", last.data)
	}
}

func TestStreamResume(t *testing.T) {
	now := t0.Add(time.Hour)
	p, _ := newProjection(t, nil, now, Config{StreamReplay: 64})
	srv := httptest.NewServer(asAdmin(p.Handler()))
	t.Cleanup(srv.Close)
	s := jobStory("p", "US", "one")
	c := openStream(t, srv, "")
	mustApply(t, p, s.inserted(now, events.StatePending, events.Facts{}))
	first := c.expect(t, said{evAdded, "one", ""})
	c.close()

	mustApply(t, p, s.started(now.Add(time.Second)), jobStory("p", "US", "two").inserted(now, events.StateRunning, events.Facts{}))
	resumed := openStream(t, srv, "", "Last-Event-ID", first[0].id)
	resumed.expect(t, said{evChanged, "one", ""}, said{evAdded, "two", ""})

	t.Run("an id of another instance", func(t *testing.T) {
		c := openStream(t, srv, "", "Last-Event-ID", "0-1")
		c.expect(t, said{evReset, "", resetReason})
	})
	t.Run("an id whose changes are gone", func(t *testing.T) {
		for i := range 100 {
			mustApply(t, p, jobStory("p", "US", fmt.Sprint("many_", i)).inserted(now, events.StateRunning, events.Facts{}))
		}
		c := openStream(t, srv, "project=none", "Last-Event-ID", first[0].id)
		c.expect(t, said{evReset, "", resetReason})
	})
}

func TestStreamSnapshot(t *testing.T) {
	now := t0.Add(time.Hour)
	p, _ := newProjection(t, nil, now, Config{})
	srv := httptest.NewServer(asAdmin(p.Handler()))
	t.Cleanup(srv.Close)
	for _, id := range []string{"c", "a", "b"} {
		mustApply(t, p, jobStory("p", "US", id).inserted(now, events.StateRunning, events.Facts{}))
	}
	mustApply(t, p, jobStory("q", "US", "other").inserted(now, events.StateRunning, events.Facts{}))
	c := openStream(t, srv, "snapshot=true&project=p")
	evs := c.expect(t, said{evSnapshot, "a", ""}, said{evSnapshot, "b", ""}, said{evSnapshot, "c", ""}, said{evSynced, "", ""})
	if evs[3].data != `{"total":3}` {
		t.Errorf("synced data %s", evs[3].data)
	}
	mustApply(t, p, jobStory("p", "US", "d").inserted(now, events.StateRunning, events.Facts{}))
	c.expect(t, said{evAdded, "d", ""})
}

// TestStreamSnapshotCarriesNoID: the snapshot's events carry no id, only
// its synced event does, so that a client whose connection drops in the
// middle of a snapshot, which an EventSource resumes with the last id it
// had, is sent the whole snapshot again rather than the changes after it,
// without the jobs it never had.
func TestStreamSnapshotCarriesNoID(t *testing.T) {
	now := t0.Add(time.Hour)
	p, _ := newProjection(t, nil, now, Config{})
	srv := httptest.NewServer(asAdmin(p.Handler()))
	t.Cleanup(srv.Close)
	for _, id := range []string{"a", "b", "c"} {
		mustApply(t, p, jobStory("p", "US", id).inserted(now, events.StateRunning, events.Facts{}))
	}
	evs := openStream(t, srv, "snapshot=true").expect(t, said{evSnapshot, "a", ""}, said{evSnapshot, "b", ""}, said{evSnapshot, "c", ""}, said{evSynced, "", ""})
	for _, ev := range evs[:3] {
		if ev.id != "" {
			t.Errorf("a snapshot event carries the id %q: a client that drops after it resumes past the jobs it never had", ev.id)
		}
	}
	if evs[3].id == "" {
		t.Fatal("the synced event carries no id: a client cannot resume after the snapshot")
	}
	// Resumed from the synced event: the changes after it, no snapshot.
	c := openStream(t, srv, "snapshot=true", "Last-Event-ID", evs[3].id)
	mustApply(t, p, jobStory("p", "US", "d").inserted(now, events.StateRunning, events.Facts{}))
	c.expect(t, said{evAdded, "d", ""})
}

func TestStreamHeartbeat(t *testing.T) {
	p, _ := newProjection(t, nil, t0, Config{StreamHeartbeat: 20 * time.Millisecond})
	srv := httptest.NewServer(asAdmin(p.Handler()))
	t.Cleanup(srv.Close)
	c := openStream(t, srv, "")
	select {
	case ev := <-c.events:
		if ev.name != evHeartbeat || !strings.HasPrefix(ev.data, `{"now":`) || ev.id == "" {
			t.Errorf("got %+v, want a heartbeat with an id", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat")
	}
}

// TestStreamCutsSlowClients has a client stop reading while the list
// changes far more than the stream keeps: the stream must end rather than
// buffer what the client has not read.
func TestStreamCutsSlowClients(t *testing.T) {
	now := t0.Add(time.Hour)
	p, _ := newProjection(t, nil, now, Config{StreamReplay: 32})
	srv := httptest.NewServer(asAdmin(p.Handler()))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/api/v1/stream", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	big := strings.Repeat("x", 900)
	const changes = 20000
	for i := range changes {
		mustApply(t, p, jobStory("p", "US", fmt.Sprint("j", i)).inserted(now, events.StateRunning, events.Facts{Query: big}))
	}
	n, err := io.Copy(io.Discard, resp.Body) // ends only if the server ended the stream
	if err != nil {
		t.Logf("reading the cut stream: %v", err)
	}
	t.Logf("read %d bytes before the stream was cut", n)
	if perEvent := int64(900); n >= changes*perEvent {
		t.Errorf("read %d bytes, as many as every change: the slow client was not cut", n)
	}
}

func TestStreamMinRunning(t *testing.T) {
	now := t0.Add(3 * time.Hour)
	p, c := newProjection(t, nil, now, Config{})
	srv := httptest.NewServer(asAdmin(p.Handler()))
	t.Cleanup(srv.Close)
	old, young := jobStory("p", "US", "old"), jobStory("p", "US", "young")
	mustApply(t, p, old.inserted(now.Add(-2*time.Hour), events.StateRunning, events.Facts{}),
		young.inserted(now.Add(-59*time.Minute), events.StateRunning, events.Facts{}))
	s := openStream(t, srv, "min_running=1h")
	mustApply(t, p, old.progress(now, 1, 1), young.progress(now, 1, 1))
	s.expect(t, said{evChanged, "old", ""})
	s.quiet(t)
	c.Advance(2 * time.Minute)
	s.expect(t, said{evAdded, "young", ""})
	mustApply(t, p, young.progress(now.Add(time.Minute), 2, 2))
	last := s.expect(t, said{evChanged, "young", ""})
	resumed := openStream(t, srv, "min_running=1h", "Last-Event-ID", last[0].id)
	resumed.expect(t, said{evReset, "", resetReason})
}

func TestStreamHead(t *testing.T) {
	p, _ := newProjection(t, nil, t0, Config{})
	w := httptest.NewRecorder()
	asAdmin(p.Handler()).ServeHTTP(w, httptest.NewRequest(http.MethodHead, "/api/v1/stream", nil))
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/event-stream" {
		t.Errorf("HEAD /api/v1/stream: %d %v", w.Code, w.Header())
	}
}

func TestStreamBadRequest(t *testing.T) {
	p, _ := newProjection(t, nil, t0, Config{})
	for _, q := range []string{"snapshot=maybe", "sort=created", "state=done"} {
		if w := get(t, asAdmin(p.Handler()), "/api/v1/stream?"+q); w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", q, w.Code)
		}
	}
}

// TestStreamsEndOnClose checks that Close ends every open stream.
func TestStreamsEndOnClose(t *testing.T) {
	p, _ := newProjection(t, nil, t0, Config{})
	srv := httptest.NewServer(asAdmin(p.Handler()))
	t.Cleanup(srv.Close)
	var wg sync.WaitGroup
	for range 3 {
		c := openStream(t, srv, "")
		wg.Go(func() {
			for range c.events {
			}
		})
	}
	p.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("streams still open after Close")
	}
}
