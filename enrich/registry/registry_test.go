package registry_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"cloud.google.com/go/bigtable"
	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/enrich/registry"
	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
)

var backends = []struct {
	name string
	open func(t *testing.T) *logtest.Bigtable
}{
	{"bttest", func(t *testing.T) *logtest.Bigtable { return logtest.NewBttest(t) }},
	{"emulator", func(t *testing.T) *logtest.Bigtable { return logtest.NewEmulator(t) }},
}

func newRegistry(t *testing.T, bt *logtest.Bigtable) *registry.Registry {
	t.Helper()
	r, err := registry.New(bt.Client, bt.Table)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestActive records projects' activity on several days from two
// replicas and lists those active since a day.
func TestActive(t *testing.T) {
	day := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			bt := b.open(t)
			r1, r2 := newRegistry(t, bt), newRegistry(t, bt)
			steps := []struct {
				r        *registry.Registry
				projects []string
				at       time.Time
			}{
				{r1, []string{"old", "moved"}, day.Add(-40 * 24 * time.Hour)},
				{r1, []string{"a", "b"}, day.Add(-10 * 24 * time.Hour)},
				{r2, []string{"moved", "c"}, day.Add(-29 * 24 * time.Hour)},
				{r2, []string{"b"}, day.Add(13 * time.Hour)},
			}
			for _, s := range steps {
				if err := s.r.Touch(t.Context(), s.projects, s.at); err != nil {
					t.Fatal(err)
				}
			}
			for _, tc := range []struct {
				since time.Time
				want  []string
			}{
				{day.Add(-30 * 24 * time.Hour), []string{"a", "b", "c", "moved"}},
				{day.Add(-5 * 24 * time.Hour), []string{"b"}},
				{day.Add(23 * time.Hour), []string{"b"}}, // the same day
				{day.Add(24 * time.Hour), nil},
			} {
				got, err := r1.Active(t.Context(), tc.since)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(got, tc.want); diff != "" {
					t.Errorf("active since %s (-got +want):\n%s", tc.since, diff)
				}
			}
		})
	}
}

// TestDenials records, refreshes and lifts denials, read by another replica.
func TestDenials(t *testing.T) {
	at := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			bt := b.open(t)
			r1, r2 := newRegistry(t, bt), newRegistry(t, bt)
			ctx := t.Context()
			list := registry.Denial{Project: "p1", Method: "jobs.list", Permission: "bigquery.jobs.listAll", Message: "Access Denied", Since: at, Checked: at}
			get := registry.Denial{Project: "p2", Method: "jobs.get", Permission: "bigquery.jobs.get", Message: "Access Denied", Since: at, Checked: at}
			for _, d := range []registry.Denial{list, get} {
				if err := r1.Deny(ctx, d); err != nil {
					t.Fatal(err)
				}
			}
			later := list
			later.Since, later.Checked = at.Add(2*time.Hour), at.Add(2*time.Hour)
			if err := r1.Deny(ctx, later); err != nil {
				t.Fatal(err)
			}
			list.Checked = later.Checked // refreshed, since kept
			got, err := r2.Denials(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, []registry.Denial{list, get}); diff != "" {
				t.Errorf("denials read by another replica (-got +want):\n%s", diff)
			}
			// The other replica, having read them, lifts one.
			if err := r2.Allow(ctx, "p1", "jobs.list"); err != nil {
				t.Fatal(err)
			}
			if got, err = r1.Denials(ctx); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, []registry.Denial{get}); diff != "" {
				t.Errorf("denials after one was lifted (-got +want):\n%s", diff)
			}
		})
	}
}

// TestDenialsUnreachable reads the denials from a Bigtable that does not
// answer: the error says the backend may come back (events.ErrUnavailable),
// so that the API answers 503 with Retry-After, not 500.
func TestDenialsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	t.Setenv("BIGTABLE_EMULATOR_HOST", addr)
	client, err := bigtable.NewClient(t.Context(), "p", "i")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	r, err := registry.New(client, "bqobserver-events")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if _, err := r.Denials(ctx); !errors.Is(err, events.ErrUnavailable) {
		t.Errorf("Denials from an unreachable Bigtable: %v, want an error matching events.ErrUnavailable", err)
	}
}
