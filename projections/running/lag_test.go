package running

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
)

// TestLagAndReadiness checks what the summary and /readyz say about the
// list's lag behind the audit log and about the event log.
func TestLagAndReadiness(t *testing.T) {
	tests := []struct {
		name        string
		behind      time.Duration
		dropTable   bool // the event log's table disappears
		wantLag     lagJSON
		wantStatus  string
		wantMeaning string
	}{
		{
			name:        "current",
			wantLag:     lagJSON{CatchingUpAfter: 10},
			wantStatus:  readyOK,
			wantMeaning: "the list is rebuilt from the event log, fed live and at most 10s behind the audit log",
		},
		{
			name:        "at the threshold",
			behind:      10 * time.Second,
			wantLag:     lagJSON{BehindSeconds: 10, CatchingUpAfter: 10},
			wantStatus:  readyOK,
			wantMeaning: "the list is rebuilt from the event log, fed live and at most 10s behind the audit log",
		},
		{
			name:        "catching up",
			behind:      76400 * time.Millisecond,
			wantLag:     lagJSON{BehindSeconds: 76.4, CatchingUp: true, CatchingUpAfter: 10, Message: "catching up, 76 s behind"},
			wantStatus:  readyCatchingUp,
			wantMeaning: "the list is served but 76 s behind the audit log; it is catching up",
		},
		{
			name:        "event log unreachable",
			behind:      time.Second,
			dropTable:   true,
			wantLag:     lagJSON{BehindSeconds: 1, CatchingUpAfter: 10},
			wantStatus:  readyDegraded,
			wantMeaning: "the event log does not answer (see event_log.error): the list is served from memory but cannot change until the log is back",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bt := logtest.NewBigtable(t)
			l, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table})
			if err != nil {
				t.Fatal(err)
			}
			p, _ := newProjection(t, l, t0, Config{ProbeTimeout: 500 * time.Millisecond,
				Behind: func(time.Time) time.Duration { return tt.behind }})
			if tt.dropTable {
				if err := bt.Admin.DeleteTable(t.Context(), bt.Table); err != nil {
					t.Fatal(err)
				}
			}

			var sum summaryJSON
			decode(t, get(t, p.Handler(), "/api/v1/summary"), http.StatusOK, &sum)
			if diff := gocmp.Diff(sum.Lag, tt.wantLag); diff != "" {
				t.Errorf("summary lag (-got +want):\n%s", diff)
			}
			if got := p.CatchingUp(); got != tt.wantLag.CatchingUp {
				t.Errorf("CatchingUp() = %v, want %v", got, tt.wantLag.CatchingUp)
			}

			var ready readyJSON
			decode(t, get(t, asAdmin(p.Handler()), "/readyz"), http.StatusOK, &ready)
			if ready.Jobs == nil {
				t.Fatal("readyz does not count the jobs for an admin")
			}
			wantLog := backendJSON{Reachable: !tt.dropTable}
			if tt.dropTable {
				if ready.EventLog.Error == "" {
					t.Error("readyz names no error of the unreachable event log")
				}
				wantLog.Error = ready.EventLog.Error
			}
			want := readyJSON{Status: tt.wantStatus, Meaning: tt.wantMeaning, Jobs: ready.Jobs, Lag: tt.wantLag, EventLog: wantLog, PubSub: backendJSON{Reachable: true}}
			if diff := gocmp.Diff(ready, want); diff != "" {
				t.Errorf("readyz (-got +want):\n%s", diff)
			}
		})
	}
}

// decode checks a response's status and decodes its JSON body into v.
func decode(t *testing.T, w *httptest.ResponseRecorder, status int, v any) {
	t.Helper()
	res := w.Result()
	defer res.Body.Close()
	if res.StatusCode != status {
		t.Fatalf("status %d; want %d", res.StatusCode, status)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
