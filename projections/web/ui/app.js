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

const $ = (sel) => document.querySelector(sel);
const form = $("#filters");

let state = url.read(location.search);
let gen = 0; // generation of the list; responses and changes of older ones are dropped
let stream = null;
let buffered = null; // stream changes received before the first page arrived
let next = ""; // cursor of the next page
let loadingMore = false;
let listAbort = null;
let retryTimer = 0;
let clockSkew = 0; // server clock minus ours, when it is more than the Date header's precision
const pending = new Map(); // stream changes not yet drawn, by job id
let flushFrame = 0;

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
  { now, setCount, failed: (err, retry) => failed(err, retry, err.message), loaded: () => showNotice(null) },
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
 * anyway, so a proxy that blocks streams leaves a list that is merely not live.
 */
function reload() {
  const g = ++gen;
  stream?.close();
  pending.clear();
  clearTimeout(retryTimer);
  if (state.view === "history") {
    stream = null;
    listAbort?.abort();
    historyView.load(state);
    return;
  }
  historyView.stop();
  buffered = [];
  next = "";
  let started = false;
  const start = () => {
    if (started || g !== gen) return;
    started = true;
    fetchFirst(g, true);
  };
  stream = new Stream(url.filterParams(state), {
    onChange: (c) => receive(g, c),
    onStatus: (s) => {
      if (g !== gen) return;
      setConnection(s);
      if (s === "live") start();
    },
    onReset: () => g === gen && fetchFirst(g, false),
  });
  setTimeout(start, STREAM_WAIT_MS);
}

async function fetchFirst(g, fromTop) {
  clearTimeout(retryTimer);
  buffered ??= []; // changes that arrive while the page is fetched are replayed on it
  listAbort?.abort();
  const ctl = new AbortController();
  listAbort = ctl;
  setCount(list.length ? $("#count").textContent : "Loading jobs…");
  try {
    const page = await listJobs(listParams(), { limit: PAGE, signal: ctl.signal });
    if (g !== gen) return;
    syncClock(page.serverTime);
    const a = fromTop ? null : table.anchor();
    list.reset(page.jobs, page.total, !page.next);
    next = page.next;
    if (fromTop) table.reset();
    else table.restore(a);
    drainBuffer(page.streamId);
    showNotice(null);
  } catch (err) {
    if (err.name !== "AbortError" && g === gen) failed(err, () => fetchFirst(g, fromTop));
  }
}

async function loadMore() {
  if (loadingMore || !next) return;
  loadingMore = true;
  const ctl = listAbort; // a new first page aborts this one and makes its cursor void
  try {
    const page = await listJobs(listParams(), { cursor: next, limit: PAGE, signal: ctl?.signal });
    if (ctl !== listAbort) return;
    list.append(page.jobs, page.total, !page.next);
    next = page.next;
    table.schedule();
    showCount();
  } catch (err) {
    if (err.name !== "AbortError" && ctl === listAbort) failed(err, () => loadMore());
  } finally {
    loadingMore = false;
  }
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
  else queue(c);
}

/** queue coalesces a change with earlier undrawn ones for the same job and schedules drawing. */
function queue(c) {
  const prev = pending.get(c.id);
  if (prev?.isNew && c.type === "upsert") c.isNew = true;
  pending.set(c.id, c);
  flushFrame ||= requestAnimationFrame(flush);
}

/** leaves reports whether a changed job no longer belongs in this list. */
function leaves(job) {
  if (job.state === "DONE") return true;
  return state.state !== "" && job.state !== "" && job.state !== state.state.toUpperCase();
}

/** flush draws every queued change in one pass, keeping the first visible row in place. */
function flush() {
  cancelAnimationFrame(flushFrame);
  flushFrame = 0;
  if (!pending.size) return render();
  const anchor = table.anchor();
  const cmp = comparator(state.sort, now());
  for (const c of pending.values()) {
    if (c.type === "remove" || leaves(c.job)) {
      // A job that left is counted out even if it was not loaded yet; a
      // change that merely fails the page's own check concerns loaded jobs only.
      if (c.type === "remove" || list.get(c.id)) list.remove(c.id);
      detail.finished(c.id);
    } else {
      list.upsert(c.job, c.isNew, cmp);
      detail.update(c.job);
    }
  }
  pending.clear();
  table.restore(anchor);
  render();
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

function syncClock(serverTime) {
  if (!Number.isFinite(serverTime)) return;
  const skew = serverTime - Date.now();
  clockSkew = Math.abs(skew) > 2000 ? skew : 0;
}

function failed(err, retry, text = err.status === 503 ? "The service is still loading jobs from the event log." : err.message) {
  const wait = err instanceof ApiError && err.retryAfter ? err.retryAfter : null;
  showNotice(wait ? `${text} Retrying in ${wait} s…` : text, retry);
  if (wait) retryTimer = setTimeout(retry, wait * 1000);
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
  p.textContent = text;
  box.replaceChildren(p, b);
}

function setConnection(s) {
  const box = $("#conn");
  if (box.dataset.state === s) return;
  box.dataset.state = s;
  $("#conn-text").textContent = { live: "Live", reconnecting: "Reconnecting…", connecting: "Connecting…" }[s] ?? s;
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
