// The page's view of a job, converted once from the API's JSON, and the
// orders the list can be sorted in. Everything else in the page reads jobs
// only through the shape normalizeJob returns.

/** idOf returns the string that identifies a job in the page: project/location/job_id. */
export function idOf(key) {
  return `${key.project}/${key.location}/${key.job_id}`;
}

/** keyOf extracts {project, location, job_id} from a job or key object of the API. */
export function keyOf(raw) {
  const k = raw.key ?? raw.job ?? raw;
  return { project: k.project ?? "", location: k.location ?? "", job_id: k.job_id ?? k.jobId ?? "" };
}

const time = (v) => {
  if (v == null || v === "") return null;
  const t = typeof v === "number" ? v : Date.parse(v);
  return Number.isFinite(t) && t > 0 ? t : null;
};

const num = (v) => {
  if (v == null || v === "") return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
};

function units(raw) {
  const p = raw.progress ?? raw;
  const u = { active: num(p.active_units), completed: num(p.completed_units), pending: num(p.pending_units) };
  return u.active == null && u.completed == null && u.pending == null ? null : u;
}

/**
 * normalizeJob converts a job of the API into the page's shape. Unknown
 * values are null (numbers, times) or "" (strings).
 */
export function normalizeJob(raw) {
  const key = keyOf(raw);
  return {
    key,
    id: idOf(key),
    state: String(raw.state ?? "").toUpperCase(),
    stale: Boolean(raw.stale),
    principal: raw.principal ?? raw.user ?? "",
    jobType: raw.job_type ?? raw.type ?? "",
    statementType: raw.statement_type ?? "",
    priority: raw.priority ?? "",
    query: raw.query ?? "",
    queryTruncated: Boolean(raw.query_truncated),
    queryHidden: Boolean(raw.query_hidden),
    labels: raw.labels ?? {},
    reservation: raw.reservation ?? "",
    referencedTables: raw.referenced_tables ?? [],
    destinationTable: raw.destination_table ?? "",
    created: time(raw.create_time),
    started: time(raw.start_time),
    ended: time(raw.end_time),
    lastSeen: time(raw.last_seen),
    slotMs: num(raw.slot_ms),
    bytesProcessed: num(raw.bytes_processed),
    bytesBilled: num(raw.bytes_billed),
    units: units(raw),
    cancelRequested: Boolean(raw.cancel_requested),
    cancelRequestedBy: raw.cancel_requested_by ?? "",
    cancelRequestTime: time(raw.cancel_request_time),
    cancelReason: raw.cancel_reason ?? "",
    cancelAnswer: raw.cancel_answer ?? "",
    reconciled: Boolean(raw.reconciled),
    reconciledReason: raw.reconciled_reason ?? (raw.reconciled ? "done" : ""),
    stages: num(raw.stages),
    error: raw.error ?? null,
  };
}

/** isNewer reports whether b is not older than a, judged by when each was last heard of. */
export function isNewer(a, b) {
  return a.lastSeen == null || b.lastSeen == null || b.lastSeen >= a.lastSeen;
}

/** queuedMs is how long the job waited before it started (so far, if it is still queued). */
export function queuedMs(job, now) {
  if (job.created == null) return null;
  return (job.started ?? job.ended ?? now) - job.created;
}

/** runningMs is how long the job has run (so far, if it is still running). */
export function runningMs(job, now) {
  if (job.started == null) return null;
  return (job.ended ?? now) - job.started;
}

/** averageSlots is slot-ms divided by running time, or null when either is unknown. */
export function averageSlots(job, now) {
  const ms = runningMs(job, now);
  if (job.slotMs == null || ms == null || ms <= 0) return null;
  return job.slotMs / ms;
}

/** progress is the completed share of known work units, or null. */
export function progress(job) {
  const u = job.units;
  if (!u) return null;
  const total = (u.completed ?? 0) + (u.pending ?? 0) + (u.active ?? 0);
  return total > 0 ? (u.completed ?? 0) / total : null;
}

/**
 * SORTS are the orders the API can sort by: the URL and API name, its label
 * and the job value it compares (larger values first when descending).
 */
export const SORTS = [
  { name: "running", label: "Running time", value: (j, now) => runningMs(j, now) },
  { name: "created", label: "Created", value: (j) => j.created },
  { name: "started", label: "Started", value: (j) => j.started },
  { name: "slot_ms", label: "Slot-ms", value: (j) => j.slotMs },
  { name: "bytes", label: "Bytes processed", value: (j) => j.bytesProcessed },
];

/** DEFAULT_SORT shows the longest-running jobs first. */
export const DEFAULT_SORT = "-running";

/** HISTORY_SORTS are the orders of the history of finished jobs: by end time, then as the list. */
export const HISTORY_SORTS = [{ name: "ended", label: "Ended", value: (j) => j.ended }, ...SORTS];

/** HISTORY_SORT shows the most recently finished jobs first. */
export const HISTORY_SORT = "-ended";

/**
 * parseSort splits "-slot_ms" into {name: "slot_ms", desc: true}; names not
 * among sorts give the fallback.
 */
export function parseSort(s, sorts = SORTS, fallback = DEFAULT_SORT) {
  const desc = s?.startsWith("-") ?? false;
  const name = desc ? s.slice(1) : s;
  if (!sorts.some((o) => o.name === name)) return parseSort(fallback, sorts, fallback);
  return { name, desc };
}

/** formatSort is the inverse of parseSort. */
export function formatSort({ name, desc }) {
  return (desc ? "-" : "") + name;
}

/**
 * comparator orders jobs as the API does for sort: unknown values last in
 * either direction, ties broken by id so the order is total.
 */
export function comparator(sort, now) {
  const { value } = HISTORY_SORTS.find((o) => o.name === sort.name);
  const dir = sort.desc ? -1 : 1;
  return (a, b) => {
    const va = value(a, now);
    const vb = value(b, now);
    if (va !== vb) {
      if (va == null) return 1;
      if (vb == null) return -1;
      return (va < vb ? -1 : 1) * dir;
    }
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  };
}
