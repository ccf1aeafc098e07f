package bus

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/google/go-cmp/cmp"
)

// TestWatermillLogger checks that the adapter writes exactly the calls at
// or above the logger's level, with their fields and those of With, and
// the subscriber's lines written once per message at DEBUG.
func TestWatermillLogger(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Level
		want  []string
	}{
		{"info", slog.LevelInfo, []string{"ERROR error a=1 b=2", "INFO info a=1 b=2"}},
		{"trace", watermill.LevelTrace, []string{"ERROR error a=1 b=2", "INFO info a=1 b=2",
			"DEBUG Message not consumed, ctx canceled a=1 b=2", "DEBUG debug a=1 b=2", "DEBUG-4 trace a=1 b=2"}},
		{"error", slog.LevelError, []string{"ERROR error a=1 b=2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := watermillLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: tt.level}))).
				With(watermill.LogFields{"a": 1})
			fields := watermill.LogFields{"b": 2}
			l.Error("error", errors.New("boom"), fields)
			l.Info("info", fields)
			l.Info("Message not consumed, ctx canceled", fields) // once per message: DEBUG
			l.Debug("debug", fields)
			l.Trace("trace", fields)
			if diff := cmp.Diff(lines(t, &buf), tt.want); diff != "" {
				t.Errorf("logged (-got +want):\n%s", diff)
			}
		})
	}
}

// lines reads JSON log lines as "LEVEL msg a=… b=…".
func lines(t *testing.T, buf *bytes.Buffer) []string {
	t.Helper()
	var out []string
	dec := json.NewDecoder(buf)
	for dec.More() {
		var rec struct {
			Level, Msg string
			A, B       int
		}
		if err := dec.Decode(&rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, rec.Level+" "+rec.Msg+" a="+strconv.Itoa(rec.A)+" b="+strconv.Itoa(rec.B))
	}
	return out
}
