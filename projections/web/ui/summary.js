// The summary strip: totals, the oldest running and longest queued job, and
// job counts by project and by reservation, each a shortcut to a filter.

import * as fmt from "./format.js";
import { normalizeJob, queuedMs, runningMs } from "./model.js";

/** CHIPS is how many projects or reservations the strip names; the rest are summed up. */
const CHIPS = 8;

/**
 * groups reads one breakdown of the summary, which may be a list of objects
 * or an object keyed by name, into [{name, count}] ordered by count.
 */
export function groups(raw, field) {
  if (!raw) return [];
  const rows = Array.isArray(raw)
    ? raw.map((g) => ({ name: g.key ?? g.name ?? g[field] ?? "", count: count(g) }))
    : Object.entries(raw).map(([name, g]) => ({ name, count: typeof g === "number" ? g : count(g) }));
  return rows.sort((a, b) => b.count - a.count || a.name.localeCompare(b.name));
}

function count(g) {
  return Number(g.jobs ?? g.count ?? g.total ?? (g.running ?? 0) + (g.pending ?? 0)) || 0;
}

/** Summary renders the strip. */
export class Summary {
  /** handlers are onFilter(name, value) and onOpen(key, job). */
  constructor(root, handlers) {
    this.kpis = root.querySelector("#kpis");
    this.projects = root.querySelector("#by-project");
    this.reservations = root.querySelector("#by-reservation");
    this.handlers = handlers;
    /** now is the server's time as the page reckons it (handlers.now), or the browser's. */
    this.now = handlers.now ?? Date.now;
    this.data = null;
    root.addEventListener("click", (e) => this.onClick(e));
  }

  /** show renders a summary from the API, marking the chips of the active filters. */
  show(raw, state) {
    this.data = {
      running: num(raw.running ?? raw.by_state?.RUNNING ?? raw.by_state?.running),
      pending: num(raw.pending ?? raw.by_state?.PENDING ?? raw.by_state?.pending),
      stale: num(raw.stale),
      projects: groups(raw.by_project, "project"),
      reservations: groups(raw.by_reservation, "reservation"),
      users: groups(raw.by_user, "user"),
      locations: groups(raw.by_location, "location"),
      oldest: raw.oldest_running ? normalizeJob(raw.oldest_running.job ?? raw.oldest_running) : null,
      longestQueued: raw.longest_queued ? normalizeJob(raw.longest_queued.job ?? raw.longest_queued) : null,
      loss: raw.audit_loss ?? null,
      behind: raw.lag?.catching_up ? raw.lag.message || `catching up, ${Math.floor(num(raw.lag.behind_seconds) ?? 0)} s behind` : "",
    };
    this.render(state);
    return this.data;
  }

  render(state) {
    const d = this.data;
    if (!d) return;
    this.kpis.replaceChildren(
      ...(d.behind ? kpi("Live feed", d.behind, "warn t-behind") : []),
      ...kpi("Running", fmt.integer(d.running ?? 0)),
      ...kpi("Queued", fmt.integer(d.pending ?? 0)),
      ...(d.stale ? kpi("Stale", fmt.integer(d.stale), "warn") : []),
      ...kpi("Projects", fmt.integer(d.projects.length)),
      ...this.jobKpi("Oldest running", d.oldest, "t-oldest"),
      ...this.jobKpi("Longest queued", d.longestQueued, "t-queued"),
      ...lossKpis(d.loss),
    );
    this.tick(this.now());
    chips(this.projects, d.projects, "project", state.project);
    chips(this.reservations, d.reservations.filter((g) => g.name !== ""), "reservation", state.reservation);
  }

  jobKpi(label, job, cls) {
    if (!job) return [];
    const b = document.createElement("button");
    b.type = "button";
    b.className = `link ${cls}`;
    b.dataset.open = job.id;
    b.title = fmt.visible(`${job.key.job_id} in ${job.key.project}`);
    return kpi(label, b);
  }

  /** tick refreshes the oldest running and longest queued durations. */
  tick(now) {
    const d = this.data;
    if (!d) return;
    const set = (sel, text) => {
      const b = this.kpis.querySelector(sel);
      if (b && b.textContent !== text) b.textContent = text;
    };
    if (d.oldest) set(".t-oldest", fmt.duration(runningMs(d.oldest, now)));
    if (d.longestQueued) set(".t-queued", fmt.duration(queuedMs(d.longestQueued, now)));
  }

  onClick(e) {
    const chip = e.target.closest("[data-filter]");
    if (chip) {
      const on = chip.getAttribute("aria-pressed") === "true";
      this.handlers.onFilter(chip.dataset.filter, on ? "" : chip.dataset.value);
      return;
    }
    const open = e.target.closest("[data-open]");
    if (!open) return;
    const job = [this.data.oldest, this.data.longestQueued].find((j) => j?.id === open.dataset.open);
    if (job) this.handlers.onOpen(job.key, job);
  }
}

/**
 * lossKpis shows how many jobs enrichment closed (their completion entry
 * never came) and found (the audit log never told of them) since the
 * service started: what the audit sink loses. Each names its projects on
 * hover.
 */
function lossKpis(loss) {
  if (!loss) return [];
  const since = `since ${fmt.clock(Date.parse(loss.since))}`;
  const by = (field) =>
    (loss.by_project ?? []).filter((g) => g[field] > 0).slice(0, CHIPS).map((g) => `${g.key}: ${fmt.integer(g[field])}`).join("\n");
  const out = [];
  for (const [label, field, what] of [
    ["Reconciled", "reconciled", "jobs closed because their completion entry never came"],
    ["Discovered", "discovered", "jobs the audit log never told of"],
  ]) {
    const [wrap] = kpi(label, fmt.integer(loss[field] ?? 0), loss[field] ? "warn" : "");
    wrap.title = [`${what}, ${since}`, by(field)].filter(Boolean).join("\n");
    out.push(wrap);
  }
  return out;
}

function num(v) {
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

function kpi(label, value, cls = "") {
  const dt = document.createElement("dt");
  dt.textContent = label;
  const dd = document.createElement("dd");
  if (cls) dd.className = cls;
  if (value instanceof Node) dd.append(value);
  else dd.textContent = value;
  const wrap = document.createElement("div");
  wrap.className = "kpi";
  wrap.append(dt, dd);
  return [wrap];
}

function chips(ul, rows, filter, active) {
  const shown = rows.slice(0, CHIPS);
  if (active && !shown.some((g) => g.name === active)) {
    const g = rows.find((r) => r.name === active);
    if (g) shown.push(g);
  }
  const items = shown.map((g) => {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "chip";
    b.dataset.filter = filter;
    b.dataset.value = g.name;
    b.setAttribute("aria-pressed", String(g.name === active));
    const name = document.createElement("span");
    name.textContent = fmt.visible(g.name);
    const n = document.createElement("span");
    n.className = "chip-count";
    n.textContent = fmt.integer(g.count);
    b.append(name, n);
    li.append(b);
    return li;
  });
  const rest = rows.length - shown.length;
  if (rest > 0) {
    const li = document.createElement("li");
    li.className = "chip-rest";
    li.textContent = `+${fmt.integer(rest)} more`;
    items.push(li);
  }
  if (!items.length) {
    const li = document.createElement("li");
    li.className = "chip-rest";
    li.textContent = "none";
    items.push(li);
  }
  ul.replaceChildren(...items);
}
