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
	// base is the requests' context. It ends when the shutdown's budget
	// does, not when the shutdown starts, so that the requests in flight
	// finish (a push delivery's append, a cancel request's call to
	// BigQuery and its record). Streams end earlier, with the projection
	// that feeds them.
	base   context.Context
	cancel context.CancelFunc
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
	base, cancel := context.WithCancel(context.Background())
	return &httpServer{ln: ln, base: base, cancel: cancel, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.readHeader,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       t.idle,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
}

// serve serves until shutdown. The requests' contexts do not end with
// ctx, which ends when the shutdown starts, but with the shutdown.
func (s *httpServer) serve(context.Context) error {
	s.srv.BaseContext = func(net.Listener) context.Context { return s.base }
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving HTTP on %s: %w", s.ln.Addr(), err)
	}
	return nil
}

// shutdown stops accepting connections and lets the requests in flight
// finish until ctx ends, then ends their contexts and closes the
// connections that remain.
func (s *httpServer) shutdown(ctx context.Context) error {
	defer s.cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.cancel()
		err = errors.Join(err, s.srv.Close())
	}
	// The listener is the server's once it serves; close it in case it never did.
	if cerr := s.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	return err
}
