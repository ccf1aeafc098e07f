// The History view: the jobs that finished in a time range, read from the
// event log through api/v1/history, with the running list's search,
// filters, sort, table and detail panel, and the way to the same jobs in
// BigQuery: a link to the history's jobs view in the console and the SQL
// over it for the same filters. (The console has no documented way to open
// a query tab filled with given SQL, so the SQL is there to copy.)

import { listHistory } from "./api.js";
import { COLUMNS, double, setText } from "./columns.js";
import * as fmt from "./format.js";
import { JobList } from "./list.js";
import { formatSort, parseSort, runningMs } from "./model.js";
import * as url from "./urlstate.js";
import { VirtualTable } from "./vtable.js";

/** PAGE is how many jobs one history request asks for. */
const PAGE = 500;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** RANGES are the preset time ranges, named as in the URL's range parameter. */
export const RANGES = [
  { name: "15m", label: "Last 15 minutes", ms: 15 * MINUTE },
  { name: "1h", label: "Last hour", ms: HOUR },
  { name: "6h", label: "Last 6 hours", ms: 6 * HOUR },
  { name: "24h", label: "Last 24 hours", ms: 24 * HOUR },
];

/** DEFAULT_RANGE is the range of a history URL that names none. */
export const DEFAULT_RANGE = "1h";

/** STATES are the choices of the state filter in each view. */
const STATES = {
  running: [["", "Any"], ["running", "Running"], ["pending", "Queued"]],
  history: [["", "Any"], ["succeeded", "Succeeded"], ["failed", "Failed"]],
};

const viewName = (view) => (view === "history" ? "history" : "running");

/**
 * showView fits the page to the view of the state s: what shows, the title,
 * the state filter's choices, and the tabs, each a link to its view with the
 * same filters; a plain click on a tab calls onView(view) instead.
 */
export function showView(s, onView) {
  const name = viewName(s.view);
  document.body.dataset.view = name;
  document.title = `${name === "history" ? "BigQuery job history" : "Running BigQuery jobs"} · bqobserver`;
  for (const tab of document.querySelectorAll("[data-view-tab]")) {
    const view = tab.dataset.viewTab === "history" ? "history" : "";
    tab.href = url.write(switchView({ ...s, job: "" }, view)) || "./";
    if (viewName(view) === name) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
    tab.onclick = (e) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      if (viewName(view) !== name) onView(view);
    };
  }
  const select = document.querySelector('#filters select[name="state"]');
  if (select.dataset.view === name) return;
  select.dataset.view = name;
  select.replaceChildren(...STATES[name].map(([value, label]) => Object.assign(document.createElement("option"), { value, textContent: label })));
}

/**
 * switchView returns the state s shown in another view: the filters and the
 * open job stay, a state filter that means nothing there goes, and the sort
 * stays unless it was the default or is not offered there.
 */
export function switchView(s, view) {
  const next = { ...s, view, range: "", from: "", to: "" };
  if (!STATES[viewName(view)].some(([value]) => value === next.state)) next.state = "";
  const sort = formatSort(s.sort) === url.defaultSort(s) ? "" : formatSort(s.sort);
  next.sort = parseSort(sort, url.sortsOf(next), url.defaultSort(next));
  return next;
}

/**
 * rangeParams returns the API's from and to for the range of s at now (the
 * server's clock as the page knows it): given ends as they are, a preset as
 * both ends, to = now and from = to − its length. (Left to end the range at
 * its own now, the server would make it longer by the request's latency,
 * and "Last 24 hours" longer than one request may read.)
 */
export function rangeParams(s, now) {
  const p = new URLSearchParams();
  if (s.from) p.set("from", s.from);
  if (s.to) p.set("to", s.to);
  if (!s.from && !s.to) {
    const preset = RANGES.find((r) => r.name === (s.range || DEFAULT_RANGE)) ?? RANGES[1];
    p.set("from", new Date(now - preset.ms).toISOString());
    p.set("to", new Date(now).toISOString());
  }
  return p;
}

/** localInput formats epoch milliseconds for a datetime-local input, to the second. */
export function localInput(ms) {
  if (!Number.isFinite(ms)) return "";
  const d = new Date(ms);
  const p2 = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}T${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}

const columns = Object.fromEntries(COLUMNS.map((c) => [c.id, c]));

/** The columns that differ from the running list's, by the id of the one each replaces. */
const REPLACED = {
  state: {
    ...columns.state,
    fill: (c, j) => {
      const [badge, sub] = c.children;
      badge.className = j.error ? "badge s-failed" : "badge s-succeeded";
      setText(badge, j.error ? "Failed" : "Done");
      badge.title = j.error ? fmt.visible([j.error.code, j.error.message].filter(Boolean).join(": ")) : "Succeeded";
      setText(sub, j.error?.code || (j.priority || "").toLowerCase());
    },
  },
  running: double(
    "running",
    "Ran",
    (j, now) => fmt.duration(runningMs(j, now)),
    (j, now) => (j.started ? `from ${fmt.shortTime(j.started, now)}` : ""),
    { sort: "running", cls: "num" },
  ),
  progress: double("ended", "Ended", (j, now) => fmt.clock(j.ended, now), (j) => (j.reconciled ? "reconciled" : ""), { sort: "ended", cls: "num" }),
};

/** HISTORY_COLUMNS are the history's columns: the running list's, with an outcome, a run time and an end time. */
export const HISTORY_COLUMNS = COLUMNS.map((c) => REPLACED[c.id] ?? c);

/** HistoryView is the history's list, table and range bar. */
export class HistoryView {
  /**
   * page are the page's functions it uses: now() (the server's clock),
   * syncClock(serverTime) (which reports whether it moved now), setCount(text),
   * failed(err, retry) and loaded(); handlers are
   * onOpen(id, job), onSort(name) and onRange({range, from, to}).
   */
  constructor(page, handlers) {
    this.page = page;
    this.handlers = handlers;
    this.list = new JobList();
    this.table = new VirtualTable(document.querySelector("#history-grid"), HISTORY_COLUMNS, this.list, {
      onOpen: (id) => handlers.onOpen(id, this.list.get(id)),
      onSort: (name) => handlers.onSort(name),
      onNeedMore: () => this.loadMore(),
    });
    this.bar = new RangeBar(document.querySelector("#history-bar"), (r) => handlers.onRange(r));
    this.gen = 0;
    this.next = "";
    this.abort = null;
    this.loadingMore = false;
  }

  /**
   * load shows the first page of the history for the state s. Every answer
   * sets the page's clock; a preset range asked for by a clock that answer
   * found wrong is asked for again, once.
   */
  async load(s, again = false) {
    const g = ++this.gen;
    this.abort?.abort();
    const ctl = new AbortController();
    this.abort = ctl;
    this.state = s;
    this.params = url.filterParams(s);
    this.params.set("sort", formatSort(s.sort));
    this.bar.select(s);
    this.page.setCount("Loading finished jobs…");
    const first = new URLSearchParams(this.params);
    for (const [k, v] of rangeParams(s, this.page.now())) first.set(k, v);
    try {
      const page = await listHistory(first, { limit: PAGE, signal: ctl.signal });
      if (g !== this.gen) return;
      const moved = this.page.syncClock(page.serverTime);
      if (moved && !again && !s.from && !s.to) return this.load(s, true);
      this.list.reset(page.jobs, page.total, !page.next);
      this.next = page.next;
      this.range = { from: page.from, to: page.to };
      this.table.reset();
      this.bar.show(page);
      this.showCount();
      this.page.loaded();
    } catch (err) {
      if (err.name !== "AbortError" && g === this.gen) this.page.failed(err, () => this.load(s));
    }
  }

  /** loadMore appends the next page: the cursor carries the range of the first. */
  async loadMore() {
    if (this.loadingMore || !this.next) return;
    this.loadingMore = true;
    const g = this.gen;
    try {
      const page = await listHistory(this.params, { cursor: this.next, limit: PAGE, signal: this.abort?.signal });
      if (g !== this.gen) return;
      this.page.syncClock(page.serverTime);
      this.list.append(page.jobs, page.total, !page.next);
      this.next = page.next;
      this.table.schedule();
      this.showCount();
    } catch (err) {
      if (err.name !== "AbortError" && g === this.gen) this.page.failed(err, () => this.loadMore());
    } finally {
      this.loadingMore = false;
    }
  }

  /** stop drops the requests in flight, when the page leaves the view. */
  stop() {
    this.gen++;
    this.abort?.abort();
  }

  showCount() {
    const n = this.list.total;
    const filtered = url.activeCount(this.state) > 0 || this.state.q !== "";
    const now = this.page.now();
    const range = `${fmt.clock(this.range.from, now)} – ${fmt.clock(this.range.to, now)}`;
    this.page.setCount(`${fmt.integer(n)} ${n === 1 ? "job" : "jobs"} ${filtered ? "match, finished" : "finished"} ${range}`);
    document.querySelector("#empty").hidden = n !== 0 || this.list.length !== 0;
  }
}

/** RangeBar is the time range's controls and the way to BigQuery. */
class RangeBar {
  constructor(root, onRange) {
    this.root = root;
    this.onRange = onRange;
    this.range = root.querySelector("#h-range");
    this.from = root.querySelector("#h-from");
    this.to = root.querySelector("#h-to");
    this.console = root.querySelector("#h-console");
    this.sql = root.querySelector("#h-sql");
    this.status = root.querySelector("#h-copy-status");
    const presets = RANGES.map((r) => Object.assign(document.createElement("option"), { value: r.name, textContent: r.label }));
    this.range.replaceChildren(...presets, Object.assign(document.createElement("option"), { value: "custom", textContent: "Between…" }));
    this.range.addEventListener("change", () => this.pick());
    for (const input of [this.from, this.to]) input.addEventListener("change", () => this.custom());
    root.querySelector("#h-refresh").addEventListener("click", () => this.onRange(null));
    root.querySelector("#h-copy").addEventListener("click", () => this.copy());
  }

  /** select shows the range of the state s in the controls. */
  select(s) {
    const custom = Boolean(s.from || s.to);
    this.range.value = custom ? "custom" : s.range || DEFAULT_RANGE;
    this.root.classList.toggle("custom", custom);
    if (custom) {
      this.from.value = localInput(Date.parse(s.from));
      this.to.value = localInput(Date.parse(s.to));
    }
  }

  /** show fills in the range read and the way to BigQuery from a history page. */
  show(page) {
    if (this.range.value !== "custom") {
      this.from.value = localInput(page.from);
      this.to.value = localInput(page.to);
    }
    const bq = page.bigquery;
    this.console.hidden = !bq.consoleURL;
    this.console.href = bq.consoleURL || "#";
    this.console.title = bq.project ? `${bq.project}.${bq.dataset}.jobs in the BigQuery console` : "";
    setText(this.sql, bq.sql);
    this.sqlText = bq.sql ?? ""; // what Copy copies: the server's SQL, not the shown text (direction controls made visible)
  }

  pick() {
    if (this.range.value !== "custom") {
      this.onRange({ range: this.range.value === DEFAULT_RANGE ? "" : this.range.value, from: "", to: "" });
      return;
    }
    this.root.classList.add("custom");
    this.custom();
  }

  custom() {
    const from = Date.parse(this.from.value);
    const to = Date.parse(this.to.value);
    if (!Number.isFinite(from) || !Number.isFinite(to) || from >= to) return;
    this.onRange({ range: "", from: new Date(from).toISOString(), to: new Date(to).toISOString() });
  }

  async copy() {
    try {
      await navigator.clipboard.writeText(this.sqlText ?? this.sql.textContent);
      this.status.textContent = "Copied";
    } catch {
      // Without the clipboard API (plain http is not a secure context),
      // select the SQL for the user to copy.
      this.sql.closest("details").open = true;
      getSelection().selectAllChildren(this.sql);
      this.status.textContent = "Selected: press Ctrl+C to copy";
    }
  }
}
