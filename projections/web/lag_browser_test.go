package web

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/browser"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/projections/running"
)

// TestCatchingUpInBrowser checks that the summary strip says how far
// behind the list is while it catches up, and stops saying so once it has
// caught up.
func TestCatchingUpInBrowser(t *testing.T) {
	browser.Binary(t)
	var behind atomic.Int64
	behind.Store(int64(76 * time.Second))
	bt := logtest.NewBigtable(t)
	l, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table})
	if err != nil {
		t.Fatal(err)
	}
	p, err := running.New(running.Config{Behind: func(time.Time) time.Duration { return time.Duration(behind.Load()) }}, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	p.MarkLive()
	mux := http.NewServeMux()
	mux.Handle("/api/", p.Handler())
	mux.Handle("/", Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		p.Close()
		srv.CloseClientConnections()
		srv.Close()
	})

	b := startBrowser(t)
	b.Run(t, "loading the page", chromedp.Navigate(srv.URL+"/"))
	b.Until(t, "waiting for the lag in the summary",
		`document.querySelector("#kpis .t-behind")?.textContent === "catching up, 76 s behind"`, waitFor)
	behind.Store(int64(time.Second))
	// The strip refreshes every 5 seconds.
	b.Until(t, "waiting for the lag to go", `document.querySelector("#kpis .t-behind") === null`, 3*waitFor)
}
