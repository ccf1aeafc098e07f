package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// httpServer serves a handler on a listener until it is shut down.
type httpServer struct {
	srv *http.Server
	ln  net.Listener
}

// timeouts bound what a slow or idle client may hold of the server.
type timeouts struct {
	readHeader, read, write, idle time.Duration
}

// serverTimeouts are the server's. A handler that needs more sets its own
// deadlines with http.ResponseController: the event stream writes for as
// long as it lives (each write within its own bound), and the push intake
// reads its body within a shorter one.
var serverTimeouts = timeouts{readHeader: 10 * time.Second, read: 30 * time.Second, write: 60 * time.Second, idle: 120 * time.Second}

// maxHeaderBytes bounds a request's header.
const maxHeaderBytes = 64 << 10

func newHTTPServer(ln net.Listener, h http.Handler, log *slog.Logger) *httpServer {
	return newHTTPServerWith(ln, h, log, serverTimeouts)
}

func newHTTPServerWith(ln net.Listener, h http.Handler, log *slog.Logger, t timeouts) *httpServer {
	return &httpServer{ln: ln, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.readHeader,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       t.idle,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
}

// serve serves until shutdown. Requests' contexts end when ctx ends, which
// cuts long-lived streams.
func (s *httpServer) serve(ctx context.Context) error {
	s.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving HTTP on %s: %w", s.ln.Addr(), err)
	}
	return nil
}

// shutdown stops accepting connections and lets the requests in flight
// finish until ctx ends, then closes the connections that remain.
func (s *httpServer) shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = errors.Join(err, s.srv.Close())
	}
	// The listener is the server's once it serves; close it in case it never did.
	if cerr := s.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	return err
}
