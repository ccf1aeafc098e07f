package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// lifecycle runs a service's components and stops them within one budget,
// --shutdown-timeout. Components are registered in start order: each may
// add a goroutine (start, or startNow) and a closer (onStop). run starts
// the goroutines and returns when the lifecycle's context ends or one of
// them fails; stop then runs the closers in reverse order (the HTTP server
// first, the clients last) and waits for the goroutines, all before the
// budget's deadline, and joins the errors. A closer whose work outlives
// the deadline is abandoned: the process is about to exit.
type lifecycle struct {
	log     *slog.Logger
	timeout time.Duration
	runners []step
	closers []step
	grp     *errgroup.Group
	gctx    context.Context    // the goroutines' context
	end     context.CancelFunc // ends gctx

	failMu  sync.Mutex
	failure error // the first goroutine's failure, which ended gctx

	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
}

// step is a named part of starting or stopping.
type step struct {
	name string
	f    func(context.Context) error
}

// newLifecycle returns a lifecycle whose goroutines run until ctx ends (or
// one of them fails, or stop is called).
func newLifecycle(ctx context.Context, log *slog.Logger, timeout time.Duration) *lifecycle {
	ctx, end := context.WithCancel(ctx)
	grp, gctx := errgroup.WithContext(ctx)
	return &lifecycle{log: log, timeout: timeout, grp: grp, gctx: gctx, end: end}
}

// start registers a goroutine that runs, from run on, until its context
// ends.
func (l *lifecycle) start(name string, run func(context.Context) error) {
	l.runners = append(l.runners, step{name, run})
}

// startNow starts a goroutine at once, while the components after it are
// still being built: for one whose start takes long and needs none of them
// (the running-jobs feed, whose rebuild is most of a restart). If building
// the others fails, stop ends it like the rest.
func (l *lifecycle) startNow(name string, run func(context.Context) error) {
	l.goStep(step{name, run})
}

// goStep runs r on the group. Its failure, which ends the other
// goroutines, is logged when it happens and kept for stop: the group hands
// it over only once every goroutine has returned, which those that outlive
// the budget never do.
func (l *lifecycle) goStep(r step) {
	l.grp.Go(func() error {
		err := r.do(l.gctx)
		if err != nil {
			l.failMu.Lock()
			first := l.failure == nil
			if first {
				l.failure = err
			}
			l.failMu.Unlock()
			if first {
				l.log.Error("a component failed; stopping the service", "error", err.Error())
			}
		}
		return err
	})
}

// failed returns the first goroutine's failure, if any.
func (l *lifecycle) failed() error {
	l.failMu.Lock()
	defer l.failMu.Unlock()
	return l.failure
}

// onStop registers a closer, called with the budget's context.
func (l *lifecycle) onStop(name string, stop func(context.Context) error) {
	l.closers = append(l.closers, step{name, stop})
}

// onStopFunc registers a closer that takes no context: stop waits for it
// only until the budget's deadline.
func (l *lifecycle) onStopFunc(name string, stop func() error) {
	l.onStop(name, func(ctx context.Context) error { return within(ctx, stop) })
}

// run starts every goroutine registered with start and returns once the
// lifecycle's context has ended or one of them failed; stop reports how
// they ended.
func (l *lifecycle) run() {
	for _, r := range l.runners {
		l.goStep(r)
	}
	<-l.gctx.Done()
	l.log.Info("shutting down", "bound", l.timeout.String())
}

// budget is the shutdown's context: its deadline is the timeout after the
// first call.
func (l *lifecycle) budget() context.Context {
	l.once.Do(func() { l.ctx, l.cancel = context.WithTimeout(context.Background(), l.timeout) })
	return l.ctx
}

// stop ends the goroutines' context (already ended unless building the
// service failed), runs the closers in reverse order, then waits for the
// goroutines, within the budget.
func (l *lifecycle) stop() error {
	ctx := l.budget()
	defer l.cancel()
	l.end()
	var errs []error
	for i := len(l.closers) - 1; i >= 0; i-- {
		errs = append(errs, l.closers[i].do(ctx))
	}
	if err := within(ctx, l.grp.Wait); err != nil {
		errs = append(errs, err)
		if failure := l.failed(); failure != nil && !errors.Is(err, failure) {
			// Some goroutines outlived the budget: the failure that
			// stopped the service is not err.
			errs = append(errs, failure)
		}
	}
	return errors.Join(errs...)
}

// do runs the step, naming it in its error. A context.Canceled error is
// how a goroutine reports that it was stopped, not a failure.
func (s step) do(ctx context.Context) error {
	err := s.f(ctx)
	if err == nil || errors.Is(err, context.Canceled) {
		return nil
	}
	return fmt.Errorf("%s: %w", s.name, err)
}

// within runs f until it returns or ctx ends, whichever is first.
func within(ctx context.Context, f func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- f() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
