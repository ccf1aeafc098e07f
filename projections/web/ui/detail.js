// The job detail panel: the job's full state and query, its query stages
// as the BigQuery API reports them, its event timeline, and a way to cancel
// it: a Cancel button with a confirmation for those who may cancel jobs
// (admins), and a cancel command to copy for everyone. It shows the list's
// copy of the job at once, then the full one from the API, and keeps up
// with the stream.

import { cancelJob, getJob } from "./api.js";
import { setText, stateLabel } from "./columns.js";
import * as fmt from "./format.js";
import { averageSlots, idOf, progress, queuedMs, runningMs } from "./model.js";
import { stagesSection } from "./stages.js";

const KIND_LABEL = {
  inserted: "Inserted",
  state_changed: "State changed",
  completed: "Completed",
  progress_observed: "Progress",
  reconciled: "Closed by reconciliation",
  cancel_requested: "Cancel requested",
};

/** RECONCILED_LABEL says why enrichment closed a job whose completion entry never came. */
const RECONCILED_LABEL = {
  done: "Closed by reconciliation: the BigQuery API reported it done",
  not_found: "Closed by reconciliation: the BigQuery API no longer knows it",
};

/** TIMELINE_REFRESH_MS is how long the panel waits after a change before refetching the timeline. */
const TIMELINE_REFRESH_MS = 1500;

/** Detail is the side panel. */
export class Detail {
  /** handlers are onClose() and onFilter(name, value) (a clicked label or value). */
  constructor(panel, handlers) {
    this.panel = panel;
    this.handlers = handlers;
    /** now is the server's time as the page reckons it (handlers.now), or the browser's. */
    this.now = handlers.now ?? Date.now;
    this.id = "";
    this.job = null;
    this.abort = null;
    this.me = null;
    this.cancelSent = new Set(); // ids of the jobs whose cancel the service accepted here
    this.cancelStatus = ""; // what became of a cancel request, shown under the button
    this.copyStatus = "";
    this.panel.addEventListener("click", (e) => this.onClick(e));
  }

  /** setMe tells the panel who the caller is ({can_cancel, …} from api/v1/me). */
  setMe(me) {
    this.me = me;
    if (this.isOpen) this.render();
  }

  get isOpen() {
    return !this.panel.hidden;
  }

  /** open shows a job, using preview (the list's copy, may be undefined) until the API answers. */
  open(key, preview) {
    const id = idOf(key);
    const same = id === this.id && this.isOpen;
    this.id = id;
    this.key = key;
    this.panel.hidden = false;
    document.body.classList.add("has-detail");
    if (!same) {
      this.job = preview ?? null;
      this.events = null;
      this.live = undefined;
      this.error = null;
      this.cancelStatus = "";
      this.copyStatus = "";
      this.render();
    }
    this.load();
  }

  /** close hides the panel. */
  close() {
    this.abort?.abort();
    clearTimeout(this.refreshTimer);
    this.panel.hidden = true;
    this.id = "";
    document.body.classList.remove("has-detail");
  }

  async load() {
    this.abort?.abort();
    const ctl = new AbortController();
    this.abort = ctl;
    try {
      const { job, events, live, liveError } = await getJob(this.key, ctl.signal);
      if (ctl.signal.aborted) return;
      this.job = job;
      this.events = events;
      this.live = live;
      this.liveError = liveError;
      this.error = null;
    } catch (err) {
      if (err.name === "AbortError") return;
      this.error = err;
    }
    this.render();
  }

  /** update applies a stream change to the open job and refreshes its timeline shortly after. */
  update(job) {
    if (job.id !== this.id) return;
    const full = this.job?.query && !this.job.queryTruncated && job.query.length < this.job.query.length;
    this.job = full ? { ...job, query: this.job.query, queryTruncated: false } : job;
    this.render();
    this.refreshSoon();
  }

  /** finished notes that the open job left the list, and fetches its final state. */
  finished(id) {
    if (id === this.id) this.refreshSoon();
  }

  refreshSoon() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.load(), TIMELINE_REFRESH_MS);
  }

  /** tick refreshes the clock-driven values. */
  tick(now) {
    if (this.isOpen && this.job) this.renderClock(now);
  }

  /**
   * render shows the open job. It builds the panel's sections afresh but
   * puts in only those that differ from what is shown, so that a change of
   * the job leaves the rest (and a text selection in it) alone, and it puts
   * the keyboard focus back on the same control when its section was
   * replaced.
   */
  render() {
    const k = this.key;
    const body = [this.header(k), this.actions(k)];
    if (this.error && !this.job) body.push(notice(this.error.message));
    if (this.job) body.push(this.factsSection());
    if (this.live !== undefined) body.push(stagesSection(this.live, this.liveError));
    if (this.job) body.push(this.querySection());
    body.push(this.timelineSection());
    keepFocus(this.panel, () => patch(this.panel, body));
  }

  header(k) {
    const head = el("header", "d-head");
    const titles = el("div", "d-titles");
    titles.append(el("p", "d-eyebrow", `${k.project} · ${k.location}`));
    const h = el("h2", "mono", k.job_id);
    h.id = "d-title";
    const badges = el("p", "d-badges");
    if (this.job) badges.append(...this.badges(this.job));
    titles.append(h, badges);
    const close = el("button", "icon-button close", "×");
    close.type = "button";
    close.dataset.action = "close";
    close.setAttribute("aria-label", "Close details (Escape)");
    head.append(titles, close);
    return head;
  }

  actions(k) {
    const box = el("section", "d-actions");
    const a = el("a", "button primary", "Open in BigQuery console");
    a.href = fmt.consoleURL(k);
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    box.append(a);
    if (this.job?.state !== "DONE") {
      box.append(el("h3", "", "Cancel this job"));
      if (this.me?.can_cancel) box.append(this.cancelButton(), el("p", "muted", "or with the bq tool:"));
      box.append(this.cancelBox(k));
    }
    return box;
  }

  /** cancelButton is offered until the job is finished or has a cancel requested (a second request would only repeat the first). */
  cancelButton() {
    const wrap = el("div", "cancel");
    const b = el("button", "button danger", "Cancel job…");
    b.type = "button";
    b.dataset.action = "cancel";
    const j = this.job;
    if (j?.state === "DONE") b.title = "The job is finished";
    else if (j?.cancelRequested || this.cancelSent.has(this.id)) b.title = "A cancel was requested";
    b.disabled = Boolean(b.title);
    const status = el("p", "cancel-status", this.cancelStatus);
    status.setAttribute("role", "status");
    wrap.append(b, status);
    return wrap;
  }

  cancelBox(k) {
    const wrap = el("div", "cmd");
    const code = el("code", "cmd-text mono", fmt.cancelCommand(k));
    code.setAttribute("aria-label", "Command that cancels this job");
    const copy = el("button", "button", "Copy");
    copy.type = "button";
    copy.dataset.action = "copy";
    const status = el("span", "copy-status", this.copyStatus);
    status.setAttribute("role", "status");
    wrap.append(code, copy, status);
    return wrap;
  }

  factsSection() {
    const s = el("section", "d-facts");
    const dl = el("dl", "facts");
    dl.append(...this.facts(this.job).flatMap(([term, value, cls]) => factRow(term, value, cls)));
    s.append(el("h3", "", "Job"), dl);
    this.renderClock(this.now(), s);
    return s;
  }

  badges(j) {
    const b = [el("span", `badge s-${j.state.toLowerCase() || "unknown"}`, stateLabel(j))];
    if (j.stale) b.push(el("span", "badge stale", "Stale: no news for longer than a job can run"));
    if (j.cancelRequested) b.push(el("span", "badge", "Cancel requested"));
    if (j.reconciledReason) b.push(el("span", "badge plain", RECONCILED_LABEL[j.reconciledReason] ?? "Closed by reconciliation"));
    if (j.priority) b.push(el("span", "badge plain", j.priority.toLowerCase()));
    return b;
  }

  facts(j) {
    const f = [
      ["User", filterLink("user", j.principal)],
      ["Type", [j.jobType, j.statementType].filter(Boolean).join(" · ")],
      ["Reservation", j.reservation ? filterLink("reservation", j.reservation) : "none known"],
      ["Created", fmt.clock(j.created)],
      ["Started", fmt.clock(j.started)],
      ["Queued", "", "t-queued"],
      ["Running", "", "t-running"],
    ];
    if (j.ended) f.push(["Ended", fmt.clock(j.ended)]);
    f.push(
      ["Slot-ms", j.slotMs == null ? "" : fmt.integer(j.slotMs)],
      ["Average slots", "", "t-slots"],
      ["Bytes processed", fmt.bytes(j.bytesProcessed)],
      ["Bytes billed", fmt.bytes(j.bytesBilled)],
      ["Progress", progressText(j)],
      ["Stages", j.stages == null ? "" : fmt.integer(j.stages)],
      ["Labels", labelTags(j.labels)],
      ["Destination", j.destinationTable],
      ["Tables read", j.referencedTables.join("\n")],
    );
    if (j.error) f.push(["Error", [j.error.code, j.error.message].filter(Boolean).join(": "), "error"]);
    if (j.cancelRequestedBy) {
      f.push(
        ["Cancel requested", `by ${j.cancelRequestedBy} at ${fmt.clock(j.cancelRequestTime)}`],
        ["Reason", j.cancelReason],
        ["BigQuery answered", j.cancelAnswer],
      );
    }
    return f.filter(([, v, cls]) => cls || (v !== "" && v != null));
  }

  /** renderClock fills in the clock-driven facts at now, in root (the panel's facts by default). */
  renderClock(now, root = this.panel) {
    const j = this.job;
    const set = (cls, text) => {
      const dd = root.querySelector(`dd.${cls}`);
      if (dd) setText(dd, text || "—");
    };
    set("t-queued", fmt.duration(queuedMs(j, now)));
    set("t-running", j.started ? fmt.duration(runningMs(j, now)) : "not started");
    set("t-slots", fmt.slots(averageSlots(j, now)));
  }

  querySection() {
    const s = el("section", "d-query");
    s.append(el("h3", "", "Query"));
    const j = this.job;
    if (j.queryHidden) {
      s.append(el("p", "muted hidden-query", "The query text is hidden: you may read the query text of your own jobs only."));
      return s;
    }
    if (!j.query) {
      s.append(el("p", "muted", j.jobType && j.jobType !== "QUERY" ? `A ${j.jobType.toLowerCase()} job has no query.` : "No query text is known."));
      return s;
    }
    const pre = el("pre", "query-text mono", j.query);
    pre.tabIndex = 0;
    pre.setAttribute("aria-label", "Query text");
    s.append(pre);
    if (j.queryTruncated) s.append(el("p", "muted", "The audit log cut this query short."));
    return s;
  }

  timelineSection() {
    const s = el("section", "d-timeline");
    s.append(el("h3", "", "Timeline"));
    if (this.events == null) {
      s.append(el("p", "muted", this.error ? `Timeline unavailable: ${this.error.message}` : "Loading…"));
      return s;
    }
    const ol = el("ol", "timeline");
    const sorted = [...this.events].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    ol.append(...sorted.map((e) => timelineItem(e)));
    s.append(sorted.length ? ol : el("p", "muted", "No events."));
    return s;
  }

  onClick(e) {
    const t = e.target.closest("[data-action]");
    if (!t) return;
    if (t.dataset.action === "close") this.handlers.onClose();
    else if (t.dataset.action === "copy") this.copy();
    else if (t.dataset.action === "filter") this.handlers.onFilter(t.dataset.name, t.dataset.value);
    else if (t.dataset.action === "cancel") this.confirmCancel();
  }

  /**
   * confirmCancel asks, in a modal dialog, whether to cancel the open job,
   * naming it, its user and what it has used so far, with an optional
   * reason; on confirmation it asks the service to cancel it.
   */
  confirmCancel() {
    const j = this.job;
    const key = this.key;
    if (!j || !key) return;
    const now = this.now();
    const dialog = el("dialog", "confirm");
    dialog.setAttribute("aria-labelledby", "c-title");
    const title = el("h2", "", `Cancel job ${key.job_id}?`);
    title.id = "c-title";
    const used = el("dl", "facts");
    const rows = [
      ["Project", `${key.project} · ${key.location}`],
      ["User", j.principal || "unknown"],
      ["Running for", j.started ? fmt.duration(runningMs(j, now)) : "not started"],
      ["Slot-ms so far", j.slotMs == null ? "unknown" : fmt.integer(j.slotMs)],
      ["Bytes processed so far", j.bytesProcessed == null ? "unknown" : fmt.bytes(j.bytesProcessed)],
    ];
    used.append(...rows.flatMap(([term, value]) => factRow(term, value)));
    const label = el("label", "reason", "Reason (optional, recorded with the request)");
    const reason = el("textarea", "");
    reason.maxLength = 1024;
    reason.rows = 3;
    label.append(reason);
    const error = el("p", "notice");
    error.setAttribute("role", "alert");
    error.hidden = true;
    const keep = el("button", "button", "Keep it running");
    keep.type = "button";
    const confirm = el("button", "button danger", "Cancel the job");
    confirm.type = "button";
    const buttons = el("div", "buttons");
    buttons.append(keep, confirm);
    dialog.append(title, el("p", "", "BigQuery will stop the job; what it has done so far is lost. The request is recorded with your name."), used, label, error, buttons);
    document.body.append(dialog);
    let asking = false;
    // Escape does not close the dialog while the request runs: its answer is shown there.
    dialog.addEventListener("cancel", (e) => asking && e.preventDefault());
    dialog.addEventListener("close", () => dialog.remove());
    keep.addEventListener("click", () => dialog.close());
    confirm.addEventListener("click", async () => {
      asking = confirm.disabled = keep.disabled = true;
      try {
        const ev = await cancelJob(key, reason.value.trim());
        dialog.close();
        this.cancelled(key, ev);
      } catch (err) {
        error.textContent = fmt.visible(err.message);
        error.hidden = false;
        confirm.disabled = keep.disabled = false;
        if (!dialog.open) this.cancelFailed(key, err); // closed anyway (the browser may insist)
      } finally {
        asking = false;
      }
    });
    dialog.showModal();
    keep.focus();
  }

  /** cancelled notes that the service accepted a cancel request, and reloads the job and its timeline. */
  cancelled(key, ev) {
    this.cancelSent.add(idOf(key));
    if (idOf(key) !== this.id) return;
    const answer = ev?.cancel_answer ? `; BigQuery answered ${ev.cancel_answer}` : "";
    this.cancelStatus = `Cancel requested${answer}. The job leaves the list once BigQuery has stopped it.`;
    this.render();
    this.load();
  }

  /** cancelFailed shows in the panel why a cancel request failed, when its dialog is gone. */
  cancelFailed(key, err) {
    if (idOf(key) !== this.id) return;
    this.cancelStatus = `The cancel request failed: ${err.message}`;
    this.render();
  }

  async copy() {
    const code = this.panel.querySelector(".cmd-text");
    const status = this.panel.querySelector(".copy-status");
    let ok = false;
    try {
      await navigator.clipboard.writeText(code.textContent);
      ok = true;
    } catch {
      // Plain http on a private network is not a secure context, where the
      // clipboard API is missing: select the text and copy the old way.
      getSelection().selectAllChildren(code);
      ok = document.execCommand?.("copy") ?? false;
    }
    this.showCopyStatus(ok ? "Copied" : "Selected: press Ctrl+C to copy");
    clearTimeout(this.copyTimer);
    this.copyTimer = setTimeout(() => this.showCopyStatus(""), 2500);
  }

  showCopyStatus(text) {
    this.copyStatus = text;
    const status = this.panel.querySelector(".copy-status");
    if (status) status.textContent = text;
  }
}

function timelineItem(e) {
  const li = el("li", `ev k-${e.kind ?? "unknown"}`);
  const t = Date.parse(e.time);
  const time = el("time", "ev-time mono", fmt.clockMillis(t));
  time.dateTime = e.time ?? "";
  const what = el("div", "ev-what");
  what.append(el("strong", "", KIND_LABEL[e.kind] ?? e.kind ?? "Event"));
  if (e.state) what.append(el("span", `badge s-${e.state.toLowerCase()}`, e.state.toLowerCase()));
  const src = [e.source?.format, e.source?.method].filter(Boolean).join(" · ");
  if (src) what.append(el("span", "ev-source", src));
  li.append(time, what);
  const note = eventNote(e);
  if (note) li.append(el("p", `ev-note${e.error ? " error" : ""}`, note));
  return li;
}

function eventNote(e) {
  if (e.kind === "cancel_requested") {
    const parts = [`by ${e.cancel_requested_by || e.principal || "someone"}`];
    if (e.cancel_reason) parts.push(`reason: ${e.cancel_reason}`);
    if (e.cancel_answer) parts.push(`BigQuery answered ${e.cancel_answer}`);
    return parts.join(" · ");
  }
  if (e.error) return [e.error.code, e.error.message].filter(Boolean).join(": ");
  const parts = [];
  if (e.slot_ms != null) parts.push(`${fmt.integer(e.slot_ms)} slot-ms`);
  if (e.bytes_processed != null) parts.push(`${fmt.bytes(e.bytes_processed)} processed`);
  if (e.completed_units != null) parts.push(`${fmt.integer(e.completed_units)} units done, ${fmt.integer(e.pending_units ?? 0)} pending, ${fmt.integer(e.active_units ?? 0)} active`);
  return parts.join(" · ");
}

function progressText(j) {
  const f = progress(j);
  if (f == null) return "";
  const u = j.units;
  return `${fmt.percent(f)} (${fmt.integer(u.completed ?? 0)} done, ${fmt.integer(u.active ?? 0)} active, ${fmt.integer(u.pending ?? 0)} pending units)`;
}

function filterLink(name, value) {
  if (!value) return "";
  const b = el("button", "link", value);
  b.type = "button";
  b.dataset.action = "filter";
  b.dataset.name = name;
  b.dataset.value = value;
  b.title = `Show only jobs with this ${name}`;
  return b;
}

function labelTags(labels) {
  const entries = Object.entries(labels ?? {});
  if (!entries.length) return "";
  const wrap = el("span", "tags");
  for (const [k, v] of entries) {
    const b = filterLink("label", `${k}=${v}`);
    b.className = "tag";
    wrap.append(b);
  }
  return wrap;
}

function factRow(term, value, cls) {
  const dd = el("dd", cls ?? "");
  if (value instanceof Node) dd.append(value);
  else dd.textContent = fmt.visible(value || "—");
  return [el("dt", "", term), dd];
}

function notice(text) {
  return el("p", "notice", text);
}

/**
 * patch makes root's children the sections nodes, each told by its class:
 * a section equal to the one shown stays (with its focus and selection),
 * another replaces it in place, a new one goes after the one before it, and
 * those not in nodes go.
 */
function patch(root, nodes) {
  const old = new Map([...root.children].map((c) => [c.className, c]));
  let prev = null;
  for (const n of nodes) {
    const o = old.get(n.className);
    old.delete(n.className);
    if (o?.isEqualNode(n)) {
      prev = o;
      continue;
    }
    if (o) o.replaceWith(n);
    else if (prev) prev.after(n);
    else root.prepend(n);
    prev = n;
  }
  for (const o of old.values()) o.remove();
}

/** keepFocus runs change, then focuses the control in root that matches the one focused before, if change took that away. */
function keepFocus(root, change) {
  const had = document.activeElement;
  const sel = had !== root && root.contains(had) ? focusSelector(had) : "";
  change();
  if (!sel || root.contains(had)) return;
  const again = root.querySelector(sel);
  if (again && !again.disabled) again.focus({ preventScroll: true });
  else root.focus({ preventScroll: true });
}

/** focusSelector is a selector for the control e: by its data-action (and filter), else by its classes. */
function focusSelector(e) {
  if (e.dataset.action) {
    return ["action", "name", "value"].filter((k) => e.dataset[k] != null).map((k) => `[data-${k}="${CSS.escape(e.dataset[k])}"]`).join("");
  }
  return e.classList.length ? [...e.classList].map((c) => `.${CSS.escape(c)}`).join("") : "";
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = fmt.visible(text);
  return e;
}
