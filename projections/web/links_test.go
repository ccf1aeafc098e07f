package web

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/internal/testutil/browser"
	"github.com/bqobserver/bqobserver/internal/testutil/logtest"
	"github.com/bqobserver/bqobserver/projections/running"
)

// TestReportLinkInBrowser loads the page over the real API: with the
// history in BigQuery, its header links to the Looker Studio report the API
// names; without, it shows no link.
func TestReportLinkInBrowser(t *testing.T) {
	browser.Binary(t)
	report := "https://lookerstudio.google.com/reporting/create?r.reportName=history"
	for _, tt := range []struct {
		name  string
		links running.Links
	}{
		{"the history in BigQuery", running.Links{HistoryReport: report, HistoryDataset: "acme-observer.bqobserver"}},
		{"no history in BigQuery", running.Links{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bt := logtest.NewBigtable(t)
			l, err := events.NewLog(bt.Client, events.LogConfig{Table: bt.Table})
			if err != nil {
				t.Fatal(err)
			}
			p, err := running.New(running.Config{Links: tt.links}, l, nil)
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
			t.Cleanup(func() { p.Close(); srv.CloseClientConnections(); srv.Close() })

			b := startBrowser(t)
			b.Run(t, "loading the page", chromedp.Navigate(srv.URL+"/"))
			b.Until(t, "waiting for the stream", `document.querySelector("#conn").dataset.state === "live"`, waitFor)
			if tt.links.HistoryReport != "" {
				b.Until(t, "waiting for the report link", `!document.querySelector("#report-link").hidden`, waitFor)
			}
			var got struct {
				Visible bool
				Href    string
			}
			b.Eval(t, `(() => { const a = document.querySelector("#report-link");
				return {Visible: !a.hidden && getComputedStyle(a).display !== "none", Href: a.hidden ? "" : a.href}; })()`, &got)
			if got.Visible != (tt.links.HistoryReport != "") || got.Href != tt.links.HistoryReport {
				t.Errorf("report link visible %v, href %q; want visible %v, href %q", got.Visible, got.Href, tt.links.HistoryReport != "", tt.links.HistoryReport)
			}
		})
	}
}
