// The columns of the job list: each builds its cell once and fills it for a
// job; columns marked live are refilled every second because they depend on
// the clock.

import * as fmt from "./format.js";
import { averageSlots, progress, queuedMs, runningMs } from "./model.js";

const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = fmt.visible(text);
  return e;
};

/** setText sets a node's text (bidirectional controls shown, see fmt.visible) only when it changed, to keep DOM writes to a minimum. */
export const setText = (node, text) => {
  const shown = fmt.visible(text);
  if (node.textContent !== shown) node.textContent = shown;
};

/** setTitle sets an element's tooltip, bidirectional controls shown. */
const setTitle = (node, text) => {
  node.title = fmt.visible(text);
};

const STATE_LABEL = { RUNNING: "Running", PENDING: "Queued", DONE: "Done" };

/** stateLabel names a job's state as the page shows it. */
export const stateLabel = (job) => STATE_LABEL[job.state] ?? (job.state || "Unknown");

function twoLines(cell, mainCls = "main") {
  cell.append(el("span", mainCls), el("span", "sub"));
  return cell;
}

const stateColumn = {
  id: "state",
  label: "State",
  make: (c) => {
    c.append(el("span", "badge"), el("span", "sub"));
    return c;
  },
  fill: (c, j) => {
    const [badge, sub] = c.children;
    badge.className = j.stale ? "badge stale" : `badge s-${j.state.toLowerCase() || "unknown"}`;
    setText(badge, j.stale ? "Stale" : stateLabel(j));
    badge.title = j.stale ? `Last seen ${stateLabel(j).toLowerCase()}, with no news for longer than any job can run: its end was probably missed` : "";
    setText(sub, j.cancelRequested ? "cancelling" : (j.priority || "").toLowerCase());
  },
};

const jobColumn = {
  id: "job",
  label: "Job",
  make: (c) => {
    const a = el("a", "main mono");
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.tabIndex = -1;
    c.append(a, el("span", "sub"));
    return c;
  },
  fill: (c, j) => {
    const [a, sub] = c.children;
    setText(a, j.key.job_id);
    a.href = fmt.consoleURL(j.key);
    setTitle(a, `${j.key.job_id}: open in the BigQuery console`);
    setText(sub, `${j.key.project} · ${j.key.location}`);
    sub.title = sub.textContent;
  },
};

const simple = (id, label, value, { sort, cls = "", live = false } = {}) => ({
  id,
  label,
  sort,
  live,
  make: (c) => {
    c.append(el("span", `main ${cls}`));
    return c;
  },
  fill: (c, j, now) => setText(c.firstChild, value(j, now)),
});

/** double is a column of two lines of text: main and sub, each computed from a job and the clock. */
export const double = (id, label, main, sub, { sort, cls = "", live = false } = {}) => ({
  id,
  label,
  sort,
  live,
  make: (c) => twoLines(c, `main ${cls}`),
  fill: (c, j, now) => {
    setText(c.children[0], main(j, now));
    setText(c.children[1], sub(j, now));
  },
});

const progressColumn = {
  id: "progress",
  label: "Progress",
  make: (c) => {
    const bar = el("span", "bar");
    bar.append(el("span", "fill"));
    c.append(bar, el("span", "sub"));
    return c;
  },
  fill: (c, j) => {
    const [bar, sub] = c.children;
    const f = progress(j);
    bar.hidden = f == null;
    if (f != null) bar.firstChild.style.width = fmt.percent(f);
    const u = j.units;
    const total = (u?.completed ?? 0) + (u?.pending ?? 0) + (u?.active ?? 0);
    setText(sub, f == null ? "" : `${fmt.percent(f)} of ${fmt.compact(total, 1)}`);
    c.title = f == null ? "" : `${fmt.integer(u.completed ?? 0)} of ${fmt.integer(total)} work units done, ${fmt.integer(u.active ?? 0)} active`;
  },
};

const labelsColumn = {
  id: "labels",
  label: "Labels",
  make: (c) => c,
  fill: (c, j) => {
    const entries = Object.entries(j.labels);
    const text = entries.map(([k, v]) => `${k}=${v}`).join("  ");
    if (c.dataset.text === text) return;
    c.dataset.text = text;
    c.replaceChildren(...entries.slice(0, 2).map(([k, v]) => el("span", "tag", `${k}=${v}`)));
    if (entries.length > 2) c.append(el("span", "more-tags", `+${entries.length - 2}`));
    setTitle(c, text);
  },
};

/** COLUMNS are the list's columns in display order; sort names the API sort a header click applies. */
export const COLUMNS = [
  stateColumn,
  jobColumn,
  {
    id: "user",
    label: "User",
    make: (c) => twoLines(c),
    fill: (c, j) => {
      const [main, sub] = c.children;
      setText(main, fmt.principalName(j.principal));
      setTitle(main, j.principal);
      setText(sub, fmt.isServiceAccount(j.principal) ? "service account" : "");
    },
  },
  {
    ...double("type", "Type", (j) => j.jobType, (j) => j.statementType),
    fill: (c, j) => {
      setText(c.children[0], j.jobType);
      setText(c.children[1], j.statementType);
      setTitle(c, [j.jobType, j.statementType].filter(Boolean).join(" · "));
    },
  },
  simple("queued", "Queued", (j, now) => fmt.duration(queuedMs(j, now)), { cls: "num", live: true }),
  double("running", "Running", (j, now) => fmt.duration(runningMs(j, now)), (j, now) => (j.started ? `since ${fmt.shortTime(j.started, now)}` : ""), { sort: "running", cls: "num", live: true }),
  double("slots", "Slot-ms", (j) => fmt.compact(j.slotMs), (j, now) => {
    const s = averageSlots(j, now);
    return s == null ? "" : `avg ${fmt.slots(s)} slots`;
  }, { sort: "slot_ms", cls: "num", live: true }),
  simple("bytes", "Bytes", (j) => fmt.bytes(j.bytesProcessed), { sort: "bytes", cls: "num" }),
  progressColumn,
  double("reservation", "Reservation", (j) => fmt.reservationParts(j.reservation).name, (j) => fmt.reservationParts(j.reservation).where),
  labelsColumn,
  {
    ...simple("query", "Query", (j) => fmt.queryStart(j.query), { cls: "mono query" }),
    fill: (c, j) => {
      setText(c.firstChild, j.queryHidden ? "hidden" : fmt.queryStart(j.query));
      c.firstChild.classList.toggle("muted", j.queryHidden);
      setTitle(c, j.queryHidden ? "You may read the query text of your own jobs only" : fmt.queryStart(j.query, 600));
    },
  },
];
