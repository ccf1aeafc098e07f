package web

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/cancel"
	"github.com/bqobserver/bqobserver/internal/testutil/browser"
)

// probeJob feeds a running job of acme-bi in US with the given id and
// query, and returns its row id.
func probeJob(o *org, id, query string) string {
	at := o.now()
	key := events.JobKey{Project: "acme-bi", Location: "US", JobID: id}
	o.feed(o.event(events.KindInserted, key, at, events.StateRunning, events.Facts{
		Principal: "alice@acme.example", JobType: events.JobTypeQuery, Query: query, CreateTime: at, StartTime: at,
	}))
	return idOf(key)
}

// timelineLength is how many events the detail's timeline shows.
const timelineLength = `document.querySelectorAll("#detail .timeline li").length`

// TestDetailKeepsFocus: a change of the open job refreshes the detail panel
// without taking the keyboard focus, or a text selection in the query, from
// the user: on a control the change left alone, and on one it redrew.
func TestDetailKeepsFocus(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, 10)
	id := probeJob(o, "focus_probe", "SELECT focus_probe FROM t")
	b := startBrowser(t)
	b.Run(t, "opening the job", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(o.URL()+"?job="+id))
	b.Until(t, "waiting for the stream", isLive, waitFor)
	b.Until(t, "waiting for the timeline", timelineLength+` === 1 && document.querySelector("#detail .query-text") !== null`, waitFor)

	b.Eval(t, `document.querySelector('#detail [data-action=copy]').focus();
		getSelection().selectAllChildren(document.querySelector("#detail .query-text")); true`, new(bool))
	o.feed(o.progress(id, 9_870_000_000))
	b.Until(t, "waiting for the panel to show the change", timelineLength+` === 2`, waitFor)
	var after struct {
		Action    string `json:"action"`
		Selection string `json:"selection"`
	}
	b.Eval(t, `({action: document.activeElement.dataset.action ?? document.activeElement.tagName, selection: getSelection().toString()})`, &after)
	if after.Action != "copy" || after.Selection != "SELECT focus_probe FROM t" {
		t.Errorf("after a change of the open job, the focus is on %q and the selection is %q; want the Copy button and the query", after.Action, after.Selection)
	}

	b.Eval(t, `document.querySelector('#detail [data-action=filter][data-name=user]').focus(); true`, new(bool))
	o.feed(o.progress(id, 19_870_000_000))
	b.Until(t, "waiting for the panel to show the change", timelineLength+` === 3`, waitFor)
	var focused string
	b.Eval(t, `document.activeElement.dataset.name ?? document.activeElement.tagName`, &focused)
	if focused != "user" {
		t.Errorf("after a change redrew the job's facts, the focus is on %q, want it on the user's filter link", focused)
	}
}

// gatedCanceller stands in for the canceller: each request waits for the
// test's answer, an error or nil, on which it records the request as the
// real one does.
type gatedCanceller struct {
	o        *org
	requests chan cancel.Request
	answers  chan error
}

func (c *gatedCanceller) Cancel(ctx context.Context, r cancel.Request) (events.Event, error) {
	c.requests <- r
	var err error
	select {
	case err = <-c.answers:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return events.Event{}, err
	}
	ev := c.o.event(events.KindCancelRequested, r.Job, c.o.now(), events.StateRunning, events.Facts{
		CancelRequestedBy: r.By, CancelReason: r.Reason, CancelAnswer: "RUNNING", CancelRequestTime: c.o.now(),
	})
	if err := c.o.log.Append(ctx, []events.Event{ev}); err != nil {
		return events.Event{}, err
	}
	return ev, c.o.proj.Apply(ctx, ev)
}

// request waits for the canceller's next request.
func (c *gatedCanceller) request(t *testing.T) cancel.Request {
	t.Helper()
	select {
	case r := <-c.requests:
		return r
	case <-time.After(waitFor):
		t.Fatal("the page sent no cancel request")
		return cancel.Request{}
	}
}

// TestCancelInBrowser cancels a job from its detail panel: Escape does not
// close the confirmation while the request runs, so a failure shows in
// it; once the service accepted a request, the Cancel button is disabled
// and says so, rather than sending another.
func TestCancelInBrowser(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, 10)
	c := &gatedCanceller{o: o, requests: make(chan cancel.Request, 4), answers: make(chan error, 1)}
	o.proj.AttachCanceller(c)
	id := probeJob(o, "cancel_probe", "SELECT 1")
	b := startBrowser(t)
	b.Run(t, "opening the job", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(o.URL()+"?job="+id))
	const button = `document.querySelector("#detail [data-action=cancel]")`
	b.Until(t, "waiting for the Cancel button", button+`?.disabled === false`, waitFor)

	const dialog = `document.querySelector("dialog.confirm[open]")`
	b.Run(t, "asking to cancel", chromedp.Click("#detail [data-action=cancel]", chromedp.ByQuery))
	b.Until(t, "waiting for the confirmation", dialog+` !== null`, waitFor)
	b.Run(t, "confirming", chromedp.Click("dialog.confirm .button.danger", chromedp.ByQuery))
	c.request(t)
	b.Run(t, "pressing Escape while the request runs", chromedp.KeyEvent(kb.Escape))
	c.answers <- fmt.Errorf("%w: the job is in a bad mood", cancel.ErrRefused)
	b.Until(t, "waiting for the failure in the confirmation",
		dialog+`?.querySelector(".notice:not([hidden])")?.textContent.includes("bad mood") === true`, waitFor)

	b.Run(t, "confirming again", chromedp.Click("dialog.confirm .button.danger", chromedp.ByQuery))
	c.request(t)
	c.answers <- nil
	b.Until(t, "waiting for the accepted request",
		`document.querySelector("dialog.confirm") === null && document.querySelector("#detail .cancel-status").textContent.startsWith("Cancel requested")`, waitFor)
	b.Until(t, "waiting for the Cancel button to be disabled", button+`.disabled && `+button+`.title === "A cancel was requested"`, waitFor)
	b.Until(t, "waiting for the job's state", `[...document.querySelectorAll("#detail .d-badges .badge")].some(e => e.textContent === "Cancel requested")`, waitFor)
	var status string
	b.Eval(t, `document.querySelector("#detail .cancel-status").textContent`, &status)
	if want := "Cancel requested; BigQuery answered RUNNING. The job leaves the list once BigQuery has stopped it."; status != want {
		t.Errorf("once the job has reloaded, the cancel status reads %q, want %q", status, want)
	}
}
