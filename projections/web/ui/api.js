// The JSON API and its event stream, by URLs relative to the page so that
// the page works wherever the service is mounted.

import { idOf, keyOf, normalizeJob } from "./model.js";

const BASE = "api/v1";

/** ApiError is a failed request, carrying the problem document's title and detail when there is one. */
export class ApiError extends Error {
  constructor(status, title, detail, retryAfter) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
}

async function getJSON(path, signal) {
  let res;
  try {
    res = await fetch(path, { signal, headers: { Accept: "application/json" } });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "The service cannot be reached", err.message, 5);
  }
  if (!res.ok) throw await problem(res);
  return { body: await res.json(), date: Date.parse(res.headers.get("Date") ?? "") };
}

async function problem(res) {
  let title = res.statusText || `HTTP ${res.status}`;
  let detail = "";
  try {
    const p = await res.json();
    title = p.title ?? title;
    detail = p.detail ?? "";
  } catch {
    // Not a problem document; the status line says enough.
  }
  const retry = Number(res.headers.get("Retry-After"));
  return new ApiError(res.status, title, detail, Number.isFinite(retry) && retry > 0 ? retry : null);
}

/**
 * listJobs fetches one page of the list. It returns the jobs, the total
 * matching, the cursor of the next page ("" on the last) and the server's
 * clock (NaN when unknown).
 */
export function listJobs(params, options) {
  return listPage("jobs", params, options);
}

/**
 * listHistory fetches one page of the jobs that finished in a time range, as
 * listJobs does, with the range read (from and to, epoch milliseconds) and
 * where the history is in BigQuery: its project and dataset, a console link
 * to its jobs view and the SQL over that view for the same filters.
 */
export async function listHistory(params, options) {
  const page = await listPage("history", params, options);
  const b = page.body;
  return {
    ...page,
    from: Date.parse(b.from ?? ""),
    to: Date.parse(b.to ?? ""),
    bigquery: {
      project: b.bigquery_project ?? "",
      dataset: b.bigquery_dataset ?? "",
      consoleURL: b.bigquery_console_url ?? "",
      sql: b.bigquery_sql ?? "",
    },
  };
}

async function listPage(path, params, { cursor = "", limit, signal } = {}) {
  const p = new URLSearchParams(params);
  if (cursor) p.set("cursor", cursor);
  if (limit) p.set("limit", String(limit));
  const { body, date } = await getJSON(`${BASE}/${path}?${p}`, signal);
  const jobs = (body.jobs ?? body.data ?? []).map(normalizeJob);
  return {
    jobs,
    total: Number(body.total ?? jobs.length),
    next: body.next_cursor ?? body.next ?? "",
    serverTime: Date.parse(body.now ?? "") || date,
    streamId: body.stream_id ?? "",
    body,
  };
}

/**
 * getJob fetches one job's full state, its event timeline and, when
 * enrichment runs, its live view from the BigQuery jobs API (stages and
 * timeline) or why there is none.
 */
export async function getJob(key, signal) {
  const e = encodeURIComponent;
  const { body } = await getJSON(`${BASE}/jobs/${e(key.project)}/${e(key.location)}/${e(key.job_id)}`, signal);
  const raw = body.job ?? body;
  return { job: normalizeJob(raw), events: body.events ?? [], live: body.live ?? null, liveError: body.live_error ?? "" };
}

/** getDiagnostics fetches the projects enrichment cannot see into. */
export async function getDiagnostics(signal) {
  return (await getJSON(`${BASE}/diagnostics`, signal)).body;
}

/** getMe fetches who the caller is: {email, role, show_queries, can_cancel, …}. */
export async function getMe(signal) {
  return (await getJSON(`${BASE}/me`, signal)).body;
}

/**
 * cancelJob asks the service to cancel a job, with an optional reason, and
 * returns the event that records the request. The body is JSON, which the
 * service requires of every state-changing request.
 */
export async function cancelJob(key, reason) {
  const e = encodeURIComponent;
  let res;
  try {
    res = await fetch(`${BASE}/jobs/${e(key.project)}/${e(key.location)}/${e(key.job_id)}:cancel`, {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/json" },
      body: JSON.stringify(reason ? { reason } : {}),
    });
  } catch (err) {
    throw new ApiError(0, "The service cannot be reached", err.message, 5);
  }
  if (!res.ok) throw await problem(res);
  return (await res.json()).event;
}

/** getSummary fetches the aggregates shown above the list. */
export async function getSummary(signal) {
  return (await getJSON(`${BASE}/summary`, signal)).body;
}

/** STREAM_RETRY_MS bounds the wait before reopening a stream the server closed. */
const STREAM_RETRY_MS = [1000, 2000, 5000, 10000, 30000];

/**
 * SILENCE_MS is how long a stream that has sent heartbeats may stay silent
 * before it is presumed dead (a proxy can keep a dead connection open).
 */
const SILENCE_MS = 60000;

/**
 * Stream follows api/v1/stream for a set of filters. It reports each change
 * as onChange({type: "upsert" | "remove", id, job, isNew}) and its connection
 * state as onStatus("connecting" | "live" | "reconnecting"). The browser
 * resumes a dropped stream with Last-Event-ID; when the server closes it for
 * good, asks for a reset, or falls silent after sending heartbeats, the
 * stream reopens after a growing delay and calls onReset, because changes
 * may have been missed.
 */
export class Stream {
  constructor(params, { onChange, onStatus, onReset }) {
    this.url = `${BASE}/stream?${new URLSearchParams(params)}`;
    this.handlers = { onChange, onStatus, onReset };
    this.failures = 0;
    this.closed = false;
    this.heard = 0;
    this.heartbeats = false;
    this.watchdog = setInterval(() => this.checkSilence(), SILENCE_MS / 4);
    this.open();
  }

  open() {
    const es = new EventSource(this.url);
    this.es = es;
    this.heard = Date.now();
    this.handlers.onStatus("connecting");
    es.onopen = () => {
      this.failures = 0;
      this.heard = Date.now();
      this.handlers.onStatus("live");
      if (this.resetOnOpen) this.handlers.onReset();
      this.resetOnOpen = false;
    };
    es.onerror = () => this.failed(es);
    const on = (types, fn) => {
      for (const type of types) {
        es.addEventListener(type, (ev) => {
          this.heard = Date.now();
          fn(ev, type);
        });
      }
    };
    on(["added", "changed", "upsert", "job", "snapshot"], (ev, type) => this.upsert(ev, type === "added"));
    on(["removed", "remove", "done"], (ev) => this.remove(ev));
    on(["heartbeat", "ping"], () => (this.heartbeats = true));
    on(["reset"], () => this.handlers.onReset());
    on(["message"], (ev) => this.untyped(ev));
  }

  checkSilence() {
    if (this.closed || !this.heartbeats || Date.now() - this.heard < SILENCE_MS) return;
    this.es.close();
    this.retry();
  }

  failed(es) {
    if (this.closed || es !== this.es) return;
    if (es.readyState === EventSource.CONNECTING) {
      this.handlers.onStatus("reconnecting");
      return;
    }
    this.retry();
  }

  retry() {
    this.handlers.onStatus("reconnecting");
    const wait = STREAM_RETRY_MS[Math.min(this.failures++, STREAM_RETRY_MS.length - 1)];
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.closed) return;
      this.resetOnOpen = true;
      this.open();
    }, wait);
  }

  upsert(ev, isNew) {
    const data = parse(ev.data);
    if (!data) return;
    for (const raw of Array.isArray(data) ? data : [data.job ?? data]) {
      const job = normalizeJob(raw);
      this.handlers.onChange({ type: "upsert", id: job.id, job, isNew, eventId: ev.lastEventId ?? "" });
    }
  }

  remove(ev) {
    const data = parse(ev.data);
    if (!data) return;
    const key = keyOf(data.job ?? data);
    this.handlers.onChange({ type: "remove", id: idOf(key), key, eventId: ev.lastEventId ?? "" });
  }

  // untyped handles events sent without an event name, telling the change by
  // a "type" field.
  untyped(ev) {
    const data = parse(ev.data);
    if (!data?.type) return;
    if (/remov|done|delet/i.test(data.type)) this.remove(ev);
    else if (/add|new|upsert|chang|update/i.test(data.type)) this.upsert(ev, /add|new/i.test(data.type));
  }

  /** close stops following the stream. */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.watchdog);
    this.es?.close();
  }
}

function parse(s) {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}

/**
 * reflected reports whether the stream event eventId ("<epoch>-<seq>") is
 * already in a page whose stream_id is pageId: same server process, and not
 * newer. Events of another process, or without ids, are not.
 */
export function reflected(eventId, pageId) {
  const [e1, s1] = String(eventId).split("-");
  const [e2, s2] = String(pageId).split("-");
  if (!e1 || !s1 || e1 !== e2 || !s2) return false;
  const a = Number(s1);
  const b = Number(s2);
  return Number.isSafeInteger(a) && Number.isSafeInteger(b) && a <= b;
}
