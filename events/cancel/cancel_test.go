package cancel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/internal/testutil/pubsubtest"
)

var (
	t0  = time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC)
	key = events.JobKey{Project: "acme-etl", Location: "US", JobID: "bquxjob_1"}
)

// bigQuery answers jobs.cancel as told, and counts the calls.
type bigQuery struct {
	state events.State
	err   error
	calls int
}

func (b *bigQuery) Cancel(_ context.Context, k events.JobKey) (events.State, error) {
	b.calls++
	if k != key {
		return "", fmt.Errorf("no job %s", k)
	}
	return b.state, b.err
}

// fixture is a canceller over a real appender: an event log on bttest (or
// the emulator) and the events topic on pstest (or the emulator).
type fixture struct {
	log  *events.Log
	app  *bus.Appender
	logs *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	bt := logtest.NewBigtable(t)
	l, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table})
	if err != nil {
		t.Fatal(err)
	}
	ps := pubsubtest.New(t)
	if _, err := ps.Client.TopicAdminClient.CreateTopic(t.Context(), &pubsubpb.Topic{Name: "projects/" + ps.Project + "/topics/events"}); err != nil {
		t.Fatal(err)
	}
	app, err := bus.NewAppender(bus.AppenderConfig{Topic: "events"}, l, ps.Client, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close(context.Background()) })
	return &fixture{log: l, app: app, logs: &bytes.Buffer{}}
}

func (f *fixture) canceller(t *testing.T, api jobsAPI) *Canceller {
	t.Helper()
	c, err := New(api, f.app, slog.New(slog.NewJSONHandler(f.logs, nil)), func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// logged returns the structured log's records.
func (f *fixture) logged(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(f.logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		delete(rec, "time")
		out = append(out, rec)
	}
	return out
}

func TestCancel(t *testing.T) {
	denied := errors.New("jobs.cancel acme-etl/bquxjob_1: denied: missing bigquery.jobs.update")
	unreachable := fmt.Errorf("jobs.cancel acme-etl/bquxjob_1: %w: connection refused", events.ErrUnavailable)
	id := events.DerivedEventID(key.String(), "cancel_requested", "alice@acme.example", "2025-03-03T08:00:00Z")
	recorded := func(state events.State, answer string) []events.Event {
		return []events.Event{{
			ID: id, Kind: events.KindCancelRequested, Job: key, Time: t0, State: state,
			Facts: events.Facts{CancelRequestedBy: "alice@acme.example", CancelRequestTime: t0,
				CancelReason: "runaway scan of the orders table", CancelAnswer: answer},
			Source: events.Source{Format: "operator", Method: "jobs.cancel"},
		}}
	}
	logLine := func(level, msg, answer string) []map[string]any {
		return []map[string]any{{"level": level, "msg": msg, "job": "acme-etl:US.bquxjob_1", "by": "alice@acme.example",
			"at": "2025-03-03T08:00:00Z", "reason": "runaway scan of the orders table", "answer": answer, "event_id": id}}
	}
	for _, tc := range []struct {
		name    string
		api     *bigQuery
		wantErr error
		want    []events.Event
		logs    []map[string]any
	}{
		{name: "accepted", api: &bigQuery{state: events.StateRunning},
			want: recorded(events.StateRunning, "RUNNING"), logs: logLine("INFO", "job cancel requested", "RUNNING")},
		{name: "already done at BigQuery", api: &bigQuery{state: events.StateDone},
			want: recorded(events.StateDone, "DONE"), logs: logLine("INFO", "job cancel requested", "DONE")},
		{name: "refused", api: &bigQuery{err: denied}, wantErr: ErrRefused,
			want: recorded("", "error: "+denied.Error()), logs: logLine("WARN", "job cancel request failed", "error: "+denied.Error())},
		{name: "unavailable", api: &bigQuery{err: unreachable}, wantErr: events.ErrUnavailable,
			want: recorded("", "error: "+unreachable.Error()), logs: logLine("WARN", "job cancel request failed", "error: "+unreachable.Error())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			c := f.canceller(t, tc.api)
			ev, err := c.Cancel(t.Context(), Request{Job: key, By: "alice@acme.example", Reason: "runaway scan of the orders table"})
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("Cancel: error %v, want one matching %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want[0], ev, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("returned event (-want +got):\n%s", diff)
			}
			got, err := f.log.JobEvents(t.Context(), key)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("the log's events of the job (-want +got):\n%s", diff)
			}
			// A request BigQuery refused or did not answer is recorded,
			// but the job is not "cancel requested": the list does not
			// show it cancelling, and an admin may ask again.
			running := events.Event{ID: "ins", Kind: events.KindInserted, Job: key, Time: t0.Add(-time.Minute), State: events.StateRunning}
			j := events.Fold(key, append([]events.Event{running}, got...))
			if want := tc.wantErr == nil; j.CancelRequested != want || j.CancelRequestedBy != "alice@acme.example" {
				t.Errorf("the job folded from its events has cancel_requested %v by %q, want %v by alice@acme.example", j.CancelRequested, j.CancelRequestedBy, want)
			}
			if diff := cmp.Diff(tc.logs, f.logged(t)); diff != "" {
				t.Errorf("structured log (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCancelRefusesInvalidRequests(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  Request
	}{
		{"no job id", Request{Job: events.JobKey{Project: "p", Location: "US"}, By: "alice@acme.example"}},
		{"nobody", Request{Job: key}},
		{"reason too long", Request{Job: key, By: "alice@acme.example", Reason: strings.Repeat("x", MaxReason+1)}},
		{"reason not UTF-8", Request{Job: key, By: "alice@acme.example", Reason: "bad \xff"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			api := &bigQuery{state: events.StateRunning}
			_, err := f.canceller(t, api).Cancel(t.Context(), tc.req)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Cancel: %v, want an error matching ErrInvalid", err)
			}
			if api.calls != 0 {
				t.Errorf("jobs.cancel was called %d times, want 0", api.calls)
			}
		})
	}
}

// An append that fails after BigQuery answered is transient, and the
// structured log keeps the answer.
func TestCancelNotRecorded(t *testing.T) {
	f := newFixture(t)
	if err := f.app.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err := f.canceller(t, &bigQuery{state: events.StateRunning}).Cancel(t.Context(), Request{Job: key, By: "alice@acme.example"})
	if !errors.Is(err, events.ErrUnavailable) || !strings.Contains(err.Error(), `BigQuery answered "RUNNING"`) {
		t.Errorf("Cancel: %v, want an error matching events.ErrUnavailable naming BigQuery's answer", err)
	}
	var msgs []string
	for _, rec := range f.logged(t) {
		msgs = append(msgs, rec["msg"].(string)+" "+fmt.Sprint(rec["answer"]))
	}
	if diff := cmp.Diff([]string{"job cancel requested RUNNING", "cancel request not recorded in the event log <nil>"}, msgs); diff != "" {
		t.Errorf("structured log (-want +got):\n%s", diff)
	}
}

// A caller that leaves before BigQuery answers (or whose deadline passes)
// records no event, since BigQuery's answer is unknown, but the request is
// logged with who asked.
func TestCancelCallerLeft(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := f.canceller(t, &bigQuery{err: context.Canceled}).Cancel(ctx, Request{Job: key, By: "alice@acme.example"})
	if !errors.Is(err, events.ErrUnavailable) {
		t.Errorf("Cancel: %v, want an error matching events.ErrUnavailable", err)
	}
	got, err := f.log.JobEvents(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("recorded %d events; want none", len(got))
	}
	want := []map[string]any{{"level": "WARN", "msg": "job cancel request failed", "job": "acme-etl:US.bquxjob_1", "by": "alice@acme.example",
		"at": "2025-03-03T08:00:00Z", "reason": "", "answer": "unknown: the request ended before BigQuery answered: context canceled"}}
	if diff := cmp.Diff(want, f.logged(t)); diff != "" {
		t.Errorf("structured log (-want +got):\n%s", diff)
	}
}

// leaving answers jobs.cancel, and then the caller leaves before the
// request is recorded.
type leaving struct {
	bigQuery
	leave context.CancelFunc
}

func (l *leaving) Cancel(ctx context.Context, k events.JobKey) (events.State, error) {
	defer l.leave()
	return l.bigQuery.Cancel(ctx, k)
}

// A caller that leaves after BigQuery accepted still gets the request
// recorded: BigQuery may have stopped the job, and the log says who asked.
func TestCancelCallerLeftAfterTheAnswer(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	api := &leaving{bigQuery: bigQuery{state: events.StateDone}, leave: cancel}
	if _, err := f.canceller(t, api).Cancel(ctx, Request{Job: key, By: "alice@acme.example", Reason: "runaway"}); err != nil {
		t.Logf("Cancel: %v (the caller had left)", err)
	}
	got, err := f.log.JobEvents(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Kind != events.KindCancelRequested || got[0].CancelRequestedBy != "alice@acme.example" {
		t.Errorf("recorded %+v; want the one cancel request by alice", got)
	}
}
