package bus

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// watermillLogger adapts logger for Watermill like watermill.NewSlogLogger,
// but skips a call below the logger's level before any work: Watermill's
// adapter turns every call's fields into attributes first, and its routers
// and subscribers make several trace and debug calls for every message.
func watermillLogger(logger *slog.Logger) watermill.LoggerAdapter {
	return leveledLogger{next: watermill.NewSlogLogger(logger), slog: logger}
}

type leveledLogger struct {
	next watermill.LoggerAdapter
	slog *slog.Logger
}

var _ watermill.LoggerAdapter = leveledLogger{}

func (l leveledLogger) enabled(level slog.Level) bool {
	return l.slog.Enabled(context.Background(), level)
}

func (l leveledLogger) Error(msg string, err error, fields watermill.LogFields) {
	l.next.Error(msg, err, fields)
}

// perMessage are the INFO lines Watermill's Pub/Sub subscriber writes once
// per message: when its stream ends (an outage, a shutdown) it nacks every
// message it holds, each with a line, 1,200 within a second in one
// outage. They are written at DEBUG: Pub/Sub delivers the messages again,
// and the stream's end is logged once as an error.
var perMessage = map[string]bool{
	"Message not consumed, ctx canceled":          true,
	"Message not consumed, subscriber is closing": true,
}

func (l leveledLogger) Info(msg string, fields watermill.LogFields) {
	if perMessage[msg] {
		l.Debug(msg, fields)
		return
	}
	if l.enabled(slog.LevelInfo) {
		l.next.Info(msg, fields)
	}
}

func (l leveledLogger) Debug(msg string, fields watermill.LogFields) {
	if l.enabled(slog.LevelDebug) {
		l.next.Debug(msg, fields)
	}
}

func (l leveledLogger) Trace(msg string, fields watermill.LogFields) {
	if l.enabled(watermill.LevelTrace) {
		l.next.Trace(msg, fields)
	}
}

func (l leveledLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return leveledLogger{next: l.next.With(fields), slog: l.slog}
}
