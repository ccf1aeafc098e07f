// The jobs page: wires the URL state, the filters, the running list and its
// stream, the summary strip, the history view and the detail panel together.

import { ApiError, Stream, getDiagnostics, getMe, getSummary, listJobs, reflected } from "./api.js";
import { showDiagnostics } from "./banner.js";
import { COLUMNS } from "./columns.js";
import { Detail } from "./detail.js";
import * as fmt from "./format.js";
import { HistoryView, showView, switchView } from "./history.js";
import { showLinks } from "./links.js";
import { JobList } from "./list.js";
import { comparator, formatSort, idOf, parseSort } from "./model.js";
import { Summary } from "./summary.js";
import * as url from "./urlstate.js";
import { VirtualTable } from "./vtable.js";

/** PAGE is how many jobs one list request asks for. */
const PAGE = 500;
/** DIAGNOSTICS_EVERY_MS is how often the diagnostics banner is refreshed. */
const DIAGNOSTICS_EVERY_MS = 30000;

/** SUMMARY_EVERY_MS is how often the summary strip is refreshed. */
const SUMMARY_EVERY_MS = 5000;
/** TYPING_MS is how long the page waits after a keystroke before it filters. */
const TYPING_MS = 250;
/** STREAM_WAIT_MS is how long the first page waits for the stream to open. */
const STREAM_WAIT_MS = 1500;
/** FLUSH_MS bounds how long stream changes wait to be drawn when no frame comes (a hidden tab has none). */
const FLUSH_MS = 1000;
/** PAGE_RETRY_S are the waits, in seconds, before fetching again a page (first or next) that failed without Retry-After. */
const PAGE_RETRY_S = [1, 2, 5, 10, 30];

const $ = (sel) => document.querySelector(sel);
const form = $("#filters");

let state = url.read(location.search);
let gen = 0; // generation of the list; responses and changes of older ones are dropped
let stream = null;
let streamStatus = "connecting";
let buffered = null; // stream changes received while the first page is fetched
let shown = 0; // the generation whose first page the list shows
let pageFailed = false; // the first page failed: the list is not live until one is shown
let pageRetries = 0; // first pages that failed in a row
let moreRetries = 0; // next pages that failed in a row
let countedAt = ""; // stream_id of the newest page: the list's total counts the changes up to it
let moreLog = null; // while a next page is fetched, the changes applied meanwhile (see appendPage)
let next = ""; // cursor of the next page
let loadingMore = false;
let listAbort = null;
let retryTimer = 0;
let clockSkew = 0; // server clock minus ours, when it is more than the Date header's precision
const pending = new Map(); // stream changes not yet drawn, by job id
let flushFrame = 0;
let flushTimer = 0;

const list = new JobList();
const table = new VirtualTable($("#grid"), COLUMNS, list, {
  onOpen: (id) => openJob(parseId(id), list.get(id)),
  onSort: (name) => sortBy(name),
  onNeedMore: () => loadMore(),
  now: () => now(),
});
const detail = new Detail($("#detail"), {
  onClose: () => closeJob(),
  onFilter: (name, value) => addFilter(name, value),
  now: () => now(),
});
const summary = new Summary($("#summary"), {
  onFilter: (name, value) => commit({ ...state, [name]: value }, { push: true }),
  onOpen: (key, job) => openJob(key, job),
  now: () => now(),
});

const now = () => Date.now() + clockSkew;

const historyView = new HistoryView(
  { now, syncClock, setCount, failed: (err, retry) => failed(err, retry, err.message), loaded: () => showNotice(null) },
  {
    onOpen: (id, job) => openJob(parseId(id), job),
    onSort: (name) => sortBy(name),
    onRange: (r) => (r ? commit({ ...state, ...r }, { push: true }) : reload()),
  },
);

/** current is the view shown: its list and table. */
const current = () => (state.view === "history" ? historyView : { list, table });

function sortBy(name) {
  const desc = state.sort.name === name ? !state.sort.desc : true;
  commit({ ...state, sort: { name, desc } }, { push: true });
}

// --- the list and its stream ---------------------------------------------

function listParams() {
  const p = url.filterParams(state);
  p.set("sort", formatSort(state.sort));
  return p;
}

/**
 * reload follows the stream for the current filters and, once the stream is
 * open, fetches the first page: every change after the page was read then
 * arrives on the stream. If the stream is slow to open the page is fetched
 * anyway, so a proxy that blocks streams leaves a list that is merely not
 * live; a stream that opens after all then fetches the page again, since the
 * changes made between the page and the stream's start never arrive.
 */
function reload() {
  const g = ++gen;
  stream?.close();
  pending.clear();
  clearTimeout(retryTimer);
  pageFailed = false;
  pageRetries = 0;
  moreRetries = 0;
  countedAt = "";
  if (state.view === "history") {
    stream = null;
    listAbort?.abort();
    historyView.load(state);
    return;
  }
  historyView.stop();
  buffered = [];
  next = "";
  let first = "waiting"; // the first page: waiting for the stream, fetched "early" without it, or "done"
  const start = (live) => {
    if (g !== gen || first === "done") return;
    if (first === "waiting" || live) fetchFirst(g, shown !== g);
    first = live ? "done" : "early";
  };
  stream = new Stream(url.filterParams(state), {
    onChange: (c) => receive(g, c),
    onStatus: (s) => {
      if (g !== gen) return;
      streamStatus = s;
      showConnection();
      if (s === "live") start(true);
    },
    onReset: () => g === gen && fetchFirst(g, false),
  });
  setTimeout(() => start(false), STREAM_WAIT_MS);
}

/**
 * fetchFirst fetches the first page. The changes that arrive meanwhile are
 * buffered and replayed on it; those received before it was asked for, it
 * reflects. If it fails, the list is not live (the changes are dropped: the
 * next page will reflect them) until a page is shown, and it is fetched
 * again after Retry-After or a growing wait.
 */
async function fetchFirst(g, fromTop) {
  clearTimeout(retryTimer);
  buffered = [];
  listAbort?.abort();
  const ctl = new AbortController();
  listAbort = ctl;
  setCount(list.length ? $("#count").textContent : "Loading jobs…");
  try {
    const page = await listJobs(listParams(), { limit: PAGE, signal: ctl.signal });
    if (g !== gen) return;
    showFirst(g, page, fromTop);
  } catch (err) {
    if (err.name === "AbortError" || g !== gen) return;
    buffered = null;
    pageFailed = true;
    showConnection();
    const wait = PAGE_RETRY_S[Math.min(pageRetries++, PAGE_RETRY_S.length - 1)];
    failed(err, () => fetchFirst(g, fromTop), undefined, wait);
  }
}

/** showFirst shows the first page of generation g and replays on it the changes buffered while it was fetched. */
function showFirst(g, page, fromTop) {
  syncClock(page.serverTime);
  const a = fromTop ? null : table.anchor();
  pending.clear(); // received before the page was asked for: it reflects them
  list.reset(page.jobs, page.total, !page.next);
  next = page.next;
  countedAt = page.streamId;
  shown = g;
  pageFailed = false;
  pageRetries = 0;
  if (fromTop) table.reset();
  else table.restore(a);
  drainBuffer(page.streamId);
  showConnection();
  showNotice(null);
}

async function loadMore() {
  if (loadingMore || !next || pageFailed) return;
  loadingMore = true;
  const ctl = listAbort; // a new first page aborts this one and makes its cursor void
  moreLog = [];
  try {
    const page = await listJobs(listParams(), { cursor: next, limit: PAGE, signal: ctl?.signal });
    if (ctl !== listAbort) return;
    flush(); // changes received so far are applied, and logged, before the page
    appendPage(page);
    table.schedule();
    showCount();
    if (moreRetries > 0) showNotice(null); // the failure it follows is mended
    moreRetries = 0;
  } catch (err) {
    if (err.name === "AbortError" || ctl !== listAbort) return;
    // Fetched again by itself, after Retry-After or a growing wait, as a
    // first page is: a user who does not scroll again is not left stuck.
    const wait = PAGE_RETRY_S[Math.min(moreRetries++, PAGE_RETRY_S.length - 1)];
    failed(err, () => ctl === listAbort && loadMore(), undefined, wait);
  } finally {
    loadingMore = false;
    moreLog = null;
  }
}

/**
 * appendPage adds a next page to the list. The page was read at its
 * stream_id, while the list went on applying changes: its jobs that left
 * after that are not added (they would stay listed for good), the jobs that
 * changed after it take their newer state, and the total is the page's plus
 * what those changes did to it.
 */
function appendPage(page) {
  const after = moreLog.filter((c) => !reflected(c.eventId, page.streamId));
  const left = new Set(after.filter((c) => c.left).map((c) => c.id));
  const total = page.total + after.reduce((n, c) => n + c.delta, 0);
  list.append(page.jobs.filter((j) => !left.has(j.id)), total, !page.next);
  const cmp = comparator(state.sort, now());
  for (const c of after) if (!left.has(c.id) && c.job) list.upsert(c.job, false, cmp);
  list.total = Math.max(total, list.length);
  next = page.next;
  countedAt = page.streamId;
}

/** drainBuffer applies the changes buffered while the page was fetched, but those the page already reflects (counted once, not twice). */
function drainBuffer(pageStreamId = "") {
  for (const c of buffered ?? []) if (!reflected(c.eventId, pageStreamId)) queue(c);
  buffered = null;
  flush();
}

function receive(g, c) {
  if (g !== gen) return;
  if (buffered) buffered.push(c);
  else if (!pageFailed) queue(c);
}

/**
 * queue coalesces a change with earlier undrawn ones for the same job and
 * schedules drawing: at the next frame, or after FLUSH_MS when frames do not
 * come (a hidden tab), so that undrawn changes do not pile up.
 */
function queue(c) {
  const prev = pending.get(c.id);
  if (prev?.isNew && gone(c) && !list.get(c.id) && !reflected(prev.eventId, countedAt)) {
    // A job that came and went between two drawings was never counted.
    pending.delete(c.id);
    moreLog?.push({ ...logged(prev, 1), left: false }, { ...logged(c, -1), left: true });
    return;
  }
  if (prev?.isNew && c.type === "upsert") c.isNew = true;
  pending.set(c.id, c);
  flushFrame ||= requestAnimationFrame(flush);
  flushTimer ||= setTimeout(flush, FLUSH_MS);
}

/** gone reports whether a change takes its job out of this list. */
function gone(c) {
  return c.type === "remove" || leaves(c.job);
}

/** logged is the entry of moreLog for a change that moved the total by delta. */
function logged(c, delta) {
  return { id: c.id, job: c.job, eventId: c.eventId, left: gone(c), delta };
}

/** leaves reports whether a changed job no longer belongs in this list. */
function leaves(job) {
  if (job.state === "DONE") return true;
  return state.state !== "" && job.state !== "" && job.state !== state.state.toUpperCase();
}

/** flush draws every queued change in one pass, keeping the first visible row in place. */
function flush() {
  cancelAnimationFrame(flushFrame);
  clearTimeout(flushTimer);
  flushFrame = flushTimer = 0;
  if (!pending.size) return render();
  const anchor = table.anchor();
  const cmp = comparator(state.sort, now());
  for (const c of pending.values()) apply(c, cmp);
  pending.clear();
  table.restore(anchor);
  render();
}

/**
 * apply applies one change to the list and the detail panel. A change the
 * newest page already reflects leaves the total alone (the page counted
 * it); while a next page is fetched, what the change did to the total is
 * logged for appendPage.
 */
function apply(c, cmp) {
  const before = list.total;
  if (gone(c)) {
    // A job that left is counted out even if it was not loaded yet; a
    // change that merely fails the page's own check concerns loaded jobs only.
    if (c.type === "remove" || list.get(c.id)) list.remove(c.id);
    detail.finished(c.id);
  } else {
    list.upsert(c.job, c.isNew, cmp);
    detail.update(c.job);
  }
  if (reflected(c.eventId, countedAt)) list.total = Math.max(before, list.length);
  moreLog?.push(logged(c, list.total - before));
}

function render() {
  table.render(now());
  showCount();
}

function setCount(text) {
  const p = $("#count");
  if (p.textContent !== text) p.textContent = text;
}

function showCount() {
  const n = list.total;
  const filtered = url.activeCount(state) > 0 || state.q !== "";
  setCount(`${fmt.integer(n)} ${n === 1 ? "job" : "jobs"}${filtered ? " match" : " running or queued"}`);
  $("#empty").hidden = n !== 0 || list.length !== 0;
}

/** syncClock takes the server's clock from a response, and reports whether that moved the page's now by more than the Date header's precision. */
function syncClock(serverTime) {
  if (!Number.isFinite(serverTime)) return false;
  const before = clockSkew;
  const skew = serverTime - Date.now();
  clockSkew = Math.abs(skew) > 2000 ? skew : 0;
  return Math.abs(clockSkew - before) > 2000;
}

/** failed shows why a request failed, with a Retry button; it retries by itself after Retry-After, or else after wait seconds when given. */
function failed(err, retry, text = err.status === 503 ? "The service is still loading jobs from the event log." : err.message, wait = null) {
  const after = err instanceof ApiError && err.retryAfter ? err.retryAfter : wait;
  showNotice(after ? `${text} Retrying in ${after} s…` : text, retry);
  if (after) retryTimer = setTimeout(retry, after * 1000);
}

function showNotice(text, retry) {
  const box = $("#notice");
  box.hidden = !text;
  if (!text) return box.replaceChildren();
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = "Retry";
  b.addEventListener("click", () => retry());
  const p = document.createElement("span");
  p.textContent = fmt.visible(text); // an error may quote what a request held
  box.replaceChildren(p, b);
}

/** showConnection shows whether the list is live: the stream's state, or "stale" while there is no page to apply its changes to. */
function showConnection() {
  const s = pageFailed ? "stale" : streamStatus;
  const box = $("#conn");
  if (box.dataset.state === s) return;
  box.dataset.state = s;
  $("#conn-text").textContent = { live: "Live", reconnecting: "Reconnecting…", connecting: "Connecting…", stale: "Not live" }[s] ?? s;
}

// --- state, URL and history -----------------------------------------------

/** commit makes s the page state: it updates the URL, the controls and, if the list changed, reloads it. */
function commit(s, { push }) {
  const before = state;
  state = s;
  const u = url.write(state) || location.pathname;
  if (push && u !== (location.search || location.pathname)) history.pushState(null, "", u);
  else history.replaceState(null, "", u);
  showControls();
  if (!url.sameList(before, state)) reload();
}

window.addEventListener("popstate", () => {
  const before = state;
  state = url.read(location.search);
  showControls();
  if (!url.sameList(before, state)) reload();
  syncDetail();
});

function addFilter(name, value) {
  if (name === "label") {
    if (!state.labels.includes(value)) commit({ ...state, labels: [...state.labels, value] }, { push: true });
    return;
  }
  commit({ ...state, [name]: value }, { push: true });
}

// --- the detail panel ------------------------------------------------------

function parseId(id) {
  const [project, location, ...rest] = id.split("/");
  return { project, location, job_id: rest.join("/") };
}

function openJob(key, preview) {
  const id = idOf(key);
  if (state.job !== id) commit({ ...state, job: id }, { push: true });
  detail.open(key, preview);
  current().table.select(id);
  $("#detail").focus({ preventScroll: true });
}

function closeJob() {
  const id = state.job;
  const { list, table } = current();
  detail.close();
  table.select("");
  if (state.job) commit({ ...state, job: "" }, { push: true });
  if (list.indexOf(id) >= 0) table.focusRow(id);
  else table.focusActive();
}

/** syncDetail opens or closes the panel to match the URL (after back or forward). */
function syncDetail() {
  const { list, table } = current();
  if (!state.job) {
    if (detail.isOpen) detail.close();
    table.select("");
    return;
  }
  detail.open(parseId(state.job), list.get(state.job));
  table.select(state.job);
}

// --- controls --------------------------------------------------------------

function showControls() {
  showView(state, (view) => commit(switchView(state, view), { push: true }));
  sortOptions();
  for (const f of url.FILTERS) {
    const input = form.elements[f];
    if (input && input.value !== state[f] && document.activeElement !== input) input.value = state[f];
  }
  $("#sort-select").value = formatSort(state.sort);
  current().table.setSort(state.sort);
  const n = url.activeCount(state);
  $("#filter-count").textContent = n ? ` (${n})` : "";
  showExtraFilters();
  summary.render(state);
}

function showExtraFilters() {
  const items = [];
  const chip = (text, drop) => {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "chip removable";
    b.textContent = fmt.visible(text);
    b.setAttribute("aria-label", `Remove filter ${fmt.visible(text)}`);
    b.addEventListener("click", drop);
    li.append(b);
    items.push(li);
  };
  for (const f of url.EXTRA) {
    if (state[f]) chip(`${f.replace("_", " ")}: ${state[f]}`, () => commit({ ...state, [f]: "" }, { push: true }));
  }
  for (const l of state.labels) {
    chip(`label ${l}`, () => commit({ ...state, labels: state.labels.filter((x) => x !== l) }, { push: true }));
  }
  $("#extra-filters").replaceChildren(...items);
}

/** sortOptions offers the orders of the view shown. */
function sortOptions() {
  const sel = $("#sort-select");
  if (sel.dataset.view === (state.view || "running")) return;
  sel.dataset.view = state.view || "running";
  const names = {
    ended: ["Most recently finished", "Earliest finished"],
    running: ["Longest running first", "Shortest running first"],
    created: ["Newest first", "Oldest first"],
    started: ["Most recently started", "Earliest started"],
    slot_ms: ["Most slot-ms first", "Fewest slot-ms first"],
    bytes: ["Most bytes first", "Fewest bytes first"],
  };
  const option = (name, desc) =>
    Object.assign(document.createElement("option"), { value: formatSort({ name, desc }), textContent: names[name][desc ? 0 : 1] });
  sel.replaceChildren(...url.sortsOf(state).flatMap((s) => [option(s.name, true), option(s.name, false)]));
}

$("#sort-select").addEventListener("change", (e) => {
  commit({ ...state, sort: parseSort(e.target.value, url.sortsOf(state), url.defaultSort(state)) }, { push: true });
});

let typingTimer = 0;
let typingSession = false;

function wireFilters() {
  form.addEventListener("submit", (e) => e.preventDefault());
  form.addEventListener("input", (e) => {
    const f = e.target.name;
    if (!url.FILTERS.includes(f) || e.target.tagName === "SELECT") return;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => {
      const value = e.target.value.trim();
      if (value === state[f]) return;
      // The first change of a typing session adds a history entry; the rest replace it.
      commit({ ...state, [f]: value }, { push: !typingSession });
      typingSession = true;
    }, TYPING_MS);
  });
  form.addEventListener("focusout", () => (typingSession = false));
  form.addEventListener("change", (e) => {
    if (e.target.tagName === "SELECT" && url.FILTERS.includes(e.target.name)) {
      commit({ ...state, [e.target.name]: e.target.value }, { push: true });
    }
  });
  const keep = () => Object.fromEntries(url.VIEW.map((f) => [f, state[f]]));
  const clear = () => commit({ ...url.empty(), ...keep(), sort: state.sort, job: state.job }, { push: true });
  $("#clear").addEventListener("click", clear);
  $("#empty-clear").addEventListener("click", clear);
  $("#filters-toggle").addEventListener("click", (e) => {
    const open = form.classList.toggle("open");
    e.currentTarget.setAttribute("aria-expanded", String(open));
  });
}

function wireKeys() {
  document.addEventListener("keydown", (e) => {
    if (document.querySelector("dialog[open]")) return; // a dialog handles its own keys
    const t = e.target;
    const typing = t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName);
    if (e.key === "/" && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault();
      form.elements.q.focus();
      form.elements.q.select();
    } else if (e.key === "Escape" && detail.isOpen) {
      e.preventDefault();
      closeJob();
    } else if (e.key === "ArrowDown" && t === form.elements.q) {
      e.preventDefault();
      current().table.focusActive();
    }
  });
}

// --- summary, clock and start ---------------------------------------------

async function refreshSummary() {
  try {
    const d = summary.show(await getSummary(), state);
    fillDatalist("#l-project", d.projects);
    fillDatalist("#l-user", d.users);
    fillDatalist("#l-reservation", d.reservations);
    fillDatalist("#l-location", d.locations);
  } catch {
    // The list shows the error; the strip keeps its last values.
  }
}

async function refreshDiagnostics() {
  try {
    showDiagnostics($("#diagnostics"), await getDiagnostics());
  } catch {
    // Diagnostics are a hint; the banner keeps its last state.
  }
}

function fillDatalist(sel, groups) {
  const dl = $(sel);
  const names = groups.map((g) => g.name).filter(Boolean).slice(0, 500);
  if (dl.dataset.names === names.join("\n")) return;
  dl.dataset.names = names.join("\n");
  dl.replaceChildren(...names.map((n) => Object.assign(document.createElement("option"), { value: n })));
}

function startClock() {
  const tick = () => {
    const t = now();
    table.tick(t);
    detail.tick(t);
    summary.tick(t);
    setTimeout(tick, 1000 - (Date.now() % 1000) + 5);
  };
  tick();
}

wireFilters();
wireKeys();
showControls();
reload();
syncDetail();
refreshSummary();
setInterval(refreshSummary, SUMMARY_EVERY_MS);
refreshDiagnostics();
setInterval(refreshDiagnostics, DIAGNOSTICS_EVERY_MS);
getMe().then((me) => detail.setMe(me), () => {}); // without it, the copyable command is offered
startClock();
showLinks($("#report-link"));
