package web

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/internal/testutil/browser"
)

// moduleCases test the page's pure modules in the browser that runs them.
// Each expression sees the modules as f (format.js), m (model.js),
// u (urlstate.js), L (the JobList class of list.js), h (history.js) and a
// (api.js);
// want is the JSON of its value.
var moduleCases = []struct {
	name, expr, want string
}{
	{"duration seconds", `f.duration(59_999)`, `"59s"`},
	{"duration minutes", `f.duration(60_000)`, `"1m 00s"`},
	{"duration under an hour", `f.duration(3_599_000)`, `"59m 59s"`},
	{"duration hours", `f.duration(3_600_000)`, `"1h 00m"`},
	{"duration days", `f.duration(90_061_000)`, `"1d 01h"`},
	{"duration unknown", `f.duration(null)`, `""`},
	{"duration negative (clock skew)", `f.duration(-5)`, `"0s"`},
	{"bytes small", `f.bytes(1023)`, `"1023 B"`},
	{"bytes KiB", `f.bytes(1536)`, `"1.50 KiB"`},
	{"bytes TiB", `f.bytes(5e12)`, `"4.55 TiB"`},
	{"compact small", `f.compact(999)`, `"999"`},
	{"compact k", `f.compact(12_345)`, `"12.3k"`},
	{"compact M", `f.compact(4_560_000)`, `"4.56M"`},
	{"compact one decimal", `f.compact(5_249, 1)`, `"5.2k"`},
	{"compact rounds up to the next suffix", `[f.compact(999_999), f.compact(999_950_000), f.compact(999.6)]`, `["1.00M","1.00G","1.00k"]`},
	{"compact three significant digits at a boundary", `[f.compact(9_999), f.compact(99_990)]`, `["10.0k","100k"]`},
	{"compact exa", `[f.compact(1e18), f.compact(2.5e21)]`, `["1.00E","2500E"]`},
	{"compact negative", `[f.compact(-5_000), f.compact(-0.4)]`, `["-5.00k","0"]`},
	{"slots rounding up to a hundred", `f.slots(99.96)`, `"100"`},
	{"slots fraction", `f.slots(0.423)`, `"0.42"`},
	{"slots tens", `f.slots(7.34)`, `"7.3"`},
	{"slots hundreds", `f.slots(204.4)`, `"204"`},
	{"slots thousands", `f.slots(1204)`, `"1.20k"`},
	{"percent floors", `f.percent(0.999)`, `"99%"`},
	{"percent clamps", `f.percent(1.2)`, `"100%"`},
	{"console link", `f.consoleURL({project: "p-1", location: "US", job_id: "bquxjob_1"})`,
		`"https://console.cloud.google.com/bigquery?project=p-1&j=bq:US:bquxjob_1&page=queryresults"`},
	{"console link escapes", `f.consoleURL({project: "example.com:p", location: "EU", job_id: "a&b"})`,
		`"https://console.cloud.google.com/bigquery?project=example.com%3Ap&j=bq:EU:a%26b&page=queryresults"`},
	{"cancel command", `f.cancelCommand({project: "example.com:p", location: "europe-west4", job_id: "job_1"})`,
		`"bq --project_id=example.com:p --location=europe-west4 cancel job_1"`},
	{"shell quoting", `f.shellQuote("it's $x")`, `"'it'\\''s $x'"`},
	{"query start drops comments and runs of space", `f.queryStart("-- c\nSELECT  1\n FROM t", 100)`, `"SELECT 1 FROM t"`},
	{"query start is bounded", `f.queryStart("SELECT 123456789", 8)`, `"SELECT …"`},
	{"service account name", `f.principalName("serviceAccount:etl@p.iam.gserviceaccount.com")`, `"etl@p"`},
	{"service account", `f.isServiceAccount("etl@p.iam.gserviceaccount.com")`, `true`},
	{"user is not a service account", `f.isServiceAccount("ann@example.com")`, `false`},
	{"reservation path", `f.reservationParts("admin:US.etl")`, `{"name":"etl","where":"admin · US"}`},
	{"reservation name only", `f.reservationParts("etl")`, `{"name":"etl","where":""}`},

	{"normalize nested key", `(({key, id, state, slotMs, created, units}) => ({key, id, state, slotMs, created, units}))(m.normalizeJob(
		{key: {project: "p", location: "US", job_id: "j"}, state: "RUNNING", slot_ms: 5, create_time: "2024-01-01T00:00:00Z", completed_units: 2}))`,
		`{"key":{"project":"p","location":"US","job_id":"j"},"id":"p/US/j","state":"RUNNING","slotMs":5,"created":1704067200000,"units":{"active":null,"completed":2,"pending":null}}`},
	{"normalize flat key", `m.normalizeJob({project: "p", location: "EU", job_id: "j"}).id`, `"p/EU/j"`},
	{"progress", `m.progress({units: {completed: 1, pending: 2, active: 1}})`, `0.25`},
	{"progress unknown", `m.progress({units: {completed: 0, pending: 0, active: 0}})`, `null`},
	{"average slots", `m.averageSlots({slotMs: 20_000, started: 1_000}, 11_000)`, `2`},
	{"average slots before start", `m.averageSlots({slotMs: 20_000, started: null}, 11_000)`, `null`},
	{"queued while pending", `m.queuedMs({created: 1_000, started: null, ended: null}, 4_000)`, `3000`},
	{"queued once started", `m.queuedMs({created: 1_000, started: 2_500, ended: null}, 9_000)`, `1500`},
	{"sort parse", `m.parseSort("-slot_ms")`, `{"name":"slot_ms","desc":true}`},
	{"sort unknown falls back", `m.parseSort("bogus")`, `{"name":"running","desc":true}`},
	{"sort puts unknown values last both ways", `(() => {
		const js = [{id: "a", slotMs: null}, {id: "b", slotMs: 5}, {id: "c", slotMs: 9}];
		return [true, false].map((desc) => [...js].sort(m.comparator({name: "slot_ms", desc}, 0)).map((j) => j.id).join(""));
	})()`, `["cba","bca"]`},

	{"url read", `u.read("?q=x&label=a%3Db&label=bad&sort=bytes&job=p/l/j&project=%20p%20")`,
		`{"sort":{"name":"bytes","desc":false},"labels":["a=b"],"job":"p/l/j","q":"x","project":"p","user":"","reservation":"","location":"","state":"","type":"","statement_type":"","min_running":"","view":"","range":"","from":"","to":""}`},
	{"url read history", `(({view, range, state, sort}) => ({view, range, state, sort}))(u.read("?view=history&range=6h&state=failed"))`,
		`{"view":"history","range":"6h","state":"failed","sort":{"name":"ended","desc":true}}`},
	{"url range only in the history", `(({view, range, from}) => ({view, range, from}))(u.read("?range=6h&from=2025-03-03T08:00:00Z"))`,
		`{"view":"","range":"","from":""}`},
	{"url history sort by end", `u.read("?view=history&sort=ended").sort`, `{"name":"ended","desc":false}`},
	{"url running list has no end sort", `u.read("?sort=ended").sort`, `{"name":"running","desc":true}`},
	{"url history default sort is implicit", `u.write(u.read("?view=history&sort=-ended&q=x&from=2025-03-03T08:00:00Z&to=2025-03-03T09:00:00Z"))`,
		`"?q=x&view=history&from=2025-03-03T08%3A00%3A00Z&to=2025-03-03T09%3A00%3A00Z"`},
	{"same list sees the range", `u.sameList(u.read("?view=history"), u.read("?view=history&range=6h"))`, `false`},
	{"same list sees the view", `u.sameList(u.read("?q=x"), u.read("?q=x&view=history"))`, `false`},
	{"switching to the history drops a running state and a default sort", `(({view, state, q, sort, job}) => ({view, state, q, sort, job}))(
		h.switchView(u.read("?state=running&q=x&job=p/l/j"), "history"))`,
		`{"view":"history","state":"","q":"x","sort":{"name":"ended","desc":true},"job":"p/l/j"}`},
	{"switching keeps a sort both views have", `h.switchView(u.read("?sort=bytes"), "history").sort`, `{"name":"bytes","desc":false}`},
	{"switching back drops the range and the end sort", `(({view, range, state, sort}) => ({view, range, state, sort}))(
		h.switchView(u.read("?view=history&range=6h&state=failed&sort=ended"), ""))`,
		`{"view":"","range":"","state":"","sort":{"name":"running","desc":true}}`},
	{"history preset range ends now", `h.rangeParams(u.read("?view=history&range=6h"), Date.parse("2025-03-03T12:00:00Z")).toString()`,
		`"from=2025-03-03T06%3A00%3A00.000Z&to=2025-03-03T12%3A00%3A00.000Z"`},
	{"history default range is the last hour", `h.rangeParams(u.read("?view=history"), Date.parse("2025-03-03T12:00:00Z")).toString()`,
		`"from=2025-03-03T11%3A00%3A00.000Z&to=2025-03-03T12%3A00%3A00.000Z"`},
	{"history last 24 hours is exactly as long as a request may read", `(p => Date.parse(p.get("to")) - Date.parse(p.get("from")))(
		h.rangeParams(u.read("?view=history&range=24h"), Date.parse("2025-03-03T12:00:00.123Z")))`, `86400000`},
	{"history range ends as given", `h.rangeParams(u.read("?view=history&from=2025-03-01T00:00:00Z&to=2025-03-02T00:00:00Z"), 0).toString()`,
		`"from=2025-03-01T00%3A00%3A00Z&to=2025-03-02T00%3A00%3A00Z"`},
	{"datetime-local value", `h.localInput(new Date(2025, 2, 3, 8, 5, 9, 700).getTime())`, `"2025-03-03T08:05:09"`},
	{"url write round trip", `u.write(u.read("?job=p/l/j&sort=bytes&label=a%3Db&q=x"))`, `"?q=x&label=a%3Db&sort=bytes&job=p%2Fl%2Fj"`},
	{"url default sort is implicit", `u.write(u.read("?sort=-running"))`, `""`},
	{"same list ignores the open job", `u.sameList(u.read("?q=x"), u.read("?q=x&job=a/b/c"))`, `true`},
	{"same list sees the sort", `u.sameList(u.read("?q=x"), u.read("?q=x&sort=bytes"))`, `false`},

	{"list inserts in order and counts", `(() => {
		const l = new L(); const cmp = m.comparator({name: "slot_ms", desc: true}, 0);
		l.reset([{id: "a", slotMs: 9}, {id: "c", slotMs: 1}], 2, true);
		const r = l.upsert({id: "b", slotMs: 5}, true, cmp);
		return [r, l.order, l.total];
	})()`, `["inserted",["a","b","c"],3]`},
	{"list leaves jobs beyond an incomplete page to later pages", `(() => {
		const l = new L(); const cmp = m.comparator({name: "slot_ms", desc: true}, 0);
		l.reset([{id: "a", slotMs: 9}, {id: "c", slotMs: 5}], 10, false);
		const r = l.upsert({id: "z", slotMs: 1}, true, cmp);
		return [r, l.order, l.total];
	})()`, `["outside",["a","c"],11]`},
	{"list patches in place and ignores older news", `(() => {
		const l = new L(); const cmp = m.comparator({name: "slot_ms", desc: true}, 0);
		l.reset([{id: "a", slotMs: 9, lastSeen: 10}, {id: "c", slotMs: 5, lastSeen: 10}], 2, true);
		const r1 = l.upsert({id: "c", slotMs: 99, lastSeen: 20}, false, cmp);
		const r2 = l.upsert({id: "c", slotMs: 0, lastSeen: 15}, false, cmp);
		return [r1, r2, l.order, l.get("c").slotMs];
	})()`, `["patched","older",["a","c"],99]`},
	{"list counts a changed job it inserts once", `(() => {
		const l = new L(); const cmp = m.comparator({name: "slot_ms", desc: true}, 0);
		l.reset([{id: "a", slotMs: 9}, {id: "c", slotMs: 5}], 900, false);
		const r = l.upsert({id: "b", slotMs: 7}, false, cmp);
		return [r, l.order, l.total];
	})()`, `["inserted",["a","b","c"],900]`},
	{"stream events the first page reflects", `[a.reflected("k3-41", "k3-42"), a.reflected("k3-42", "k3-42"), a.reflected("k3-43", "k3-42"),
		a.reflected("zz-1", "k3-42"), a.reflected("", "k3-42"), a.reflected("k3-1", "")]`, `[true,true,false,false,false,false]`},
	{"list removes", `(() => {
		const l = new L();
		l.reset([{id: "a"}, {id: "b"}, {id: "c"}], 5, false);
		return [l.remove("b"), l.remove("zz"), l.order, l.total, l.indexOf("c")];
	})()`, `[true,false,["a","c"],3,1]`},
	{"list append skips jobs the stream inserted", `(() => {
		const l = new L();
		l.reset([{id: "a"}], 3, false);
		l.append([{id: "a"}, {id: "b"}], 3, true);
		return [l.order, l.complete];
	})()`, `[["a","b"],true]`},
}

func TestModulesInBrowser(t *testing.T) {
	browser.Binary(t)
	o := newOrg(t, 0)
	b := startBrowser(t)
	b.Run(t, "loading the page", chromedp.Navigate(o.URL()))

	var calls []string
	for _, c := range moduleCases {
		calls = append(calls, fmt.Sprintf("[%q, () => (%s)]", c.name, c.expr))
	}
	base := "/assets/" + Version() + "/"
	script := fmt.Sprintf(`(async () => {
		const [f, m, u, {JobList: L}, h, a] = await Promise.all(["format", "model", "urlstate", "list", "history", "api"].map((n) => import(%q + n + ".js")));
		const out = {};
		for (const [name, fn] of [%s]) {
			try { out[name] = JSON.stringify(fn()); } catch (e) { out[name] = "threw " + e; }
		}
		return out;
	})()`, base, strings.Join(calls, ",\n"))
	var got map[string]string
	await := func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }
	b.Run(t, "running module cases", chromedp.Evaluate(script, &got, await))
	for _, c := range moduleCases {
		if diff := cmp.Diff(normalJSON(t, c.want), normalJSON(t, got[c.name])); diff != "" {
			t.Errorf("%s: %s (-want +got):\n%s", c.name, c.expr, diff)
		}
	}
}

func normalJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return "not JSON: " + s
	}
	return v
}
