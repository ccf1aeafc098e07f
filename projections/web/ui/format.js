// Formatting of durations, sizes and counts, and the two strings a user
// copies out of the page: the console link and the cancel command.

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const pad2 = (n) => String(n).padStart(2, "0");

/** duration formats milliseconds as "42s", "3m 07s", "2h 05m" or "3d 04h". */
export function duration(ms) {
  if (ms == null || !Number.isFinite(ms)) return "";
  ms = Math.max(0, ms);
  if (ms < MINUTE) return `${Math.floor(ms / SECOND)}s`;
  if (ms < HOUR) return `${Math.floor(ms / MINUTE)}m ${pad2(Math.floor((ms % MINUTE) / SECOND))}s`;
  if (ms < DAY) return `${Math.floor(ms / HOUR)}h ${pad2(Math.floor((ms % HOUR) / MINUTE))}m`;
  return `${Math.floor(ms / DAY)}d ${pad2(Math.floor((ms % DAY) / HOUR))}h`;
}

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/** bytes formats a byte count with binary units: "0 B", "512 B", "1.5 GiB". */
export function bytes(n) {
  if (n == null || !Number.isFinite(n)) return "";
  let i = 0;
  let v = Math.max(0, n);
  while (v >= 1024 && i < BYTE_UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${BYTE_UNITS[i]}`;
}

const SI = ["k", "M", "G", "T", "P", "E"];

/** significant formats x (at least 0) with three significant digits, at most maxDecimals decimals, as rounded: "9.99", "10.0", "999". */
function significant(x, maxDecimals) {
  for (const d of [2, 1]) {
    if (d > maxDecimals) continue;
    const s = x.toFixed(d);
    if (Number(s) < 10 ** (3 - d)) return s;
  }
  return x.toFixed(0);
}

/** compact formats a count with SI suffixes and three significant digits (or fewer): "999", "12.3k", "4.56M"; a value that rounds up to 1000 takes the next suffix ("1.00M", not "1000k"). */
export function compact(n, maxDecimals = 2) {
  if (n == null || !Number.isFinite(n)) return "";
  const a = Math.abs(n);
  const sign = n < 0 && Math.round(a) > 0 ? "-" : "";
  if (Math.round(a) < 1000) return sign + String(Math.round(a));
  for (let i = 0; i < SI.length; i++) {
    const s = significant(a / 1000 ** (i + 1), maxDecimals);
    if (Number(s) < 1000 || i === SI.length - 1) return sign + s + SI[i];
  }
}

const integerFormat = new Intl.NumberFormat("en-US");

/** integer formats a count with thousands separators. */
export function integer(n) {
  return n == null || !Number.isFinite(n) ? "" : integerFormat.format(n);
}

/** slots formats an average slot count: "0.42", "7.3", "204", "1.20k". */
export function slots(x) {
  if (x == null || !Number.isFinite(x)) return "";
  if (x < 1) return x.toFixed(2);
  if (Number(x.toFixed(1)) < 100) return x.toFixed(1);
  if (Math.round(x) < 1000) return String(Math.round(x));
  return compact(x);
}

/** percent formats a fraction in [0, 1] as a whole percentage. */
export function percent(f) {
  if (f == null || !Number.isFinite(f)) return "";
  return `${Math.floor(Math.min(1, Math.max(0, f)) * 100)}%`;
}

/** clock formats epoch milliseconds as local "HH:MM:SS", with the date when it is not today. */
export function clock(ms, now = Date.now()) {
  if (ms == null) return "";
  const d = new Date(ms);
  const t = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  if (new Date(now).toDateString() === d.toDateString()) return t;
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${t}`;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** shortTime formats epoch milliseconds for a narrow cell: "14:05" within the last 20 hours, else "Nov 16". */
export function shortTime(ms, now = Date.now()) {
  if (ms == null) return "";
  const d = new Date(ms);
  if (now - ms < 20 * HOUR) return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return `${MONTHS[d.getMonth()]} ${d.getDate()}`;
}

/** clockMillis is clock with milliseconds, for event timelines. */
export function clockMillis(ms, now = Date.now()) {
  if (ms == null) return "";
  return `${clock(ms, now)}.${String(new Date(ms).getMilliseconds()).padStart(3, "0")}`;
}

/** consoleURL links to a job in the BigQuery console. */
export function consoleURL(key) {
  const e = encodeURIComponent;
  return (
    `https://console.cloud.google.com/bigquery?project=${e(key.project)}` +
    `&j=bq:${e(key.location)}:${e(key.job_id)}&page=queryresults`
  );
}

/** shellQuote quotes s for a POSIX shell when it holds anything but safe characters. */
export function shellQuote(s) {
  if (/^[A-Za-z0-9_.:@%+=,\/-]+$/.test(s)) return s;
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** cancelCommand is the bq command line that cancels a job. */
export function cancelCommand(key) {
  const q = shellQuote;
  return `bq --project_id=${q(key.project)} --location=${q(key.location)} cancel ${q(key.job_id)}`;
}

/**
 * BIDI_CONTROLS are the characters that reorder the text around them:
 * embeddings, overrides, isolates and directional marks.
 */
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;

/**
 * visible shows each bidirectional control character of s as its code
 * point ("[U+202E]"), so that a name, a label or a query cannot reorder
 * what the page shows around it. Everything the page writes as text goes
 * through it; values it sends back (filters, requests) keep the original.
 */
export function visible(s) {
  if (typeof s !== "string") return s;
  return s.replace(BIDI_CONTROLS, (c) => `[U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}]`);
}

/** queryStart returns the start of a query on one line, at most max characters. */
export function queryStart(query, max = 160) {
  if (!query) return "";
  const s = query
    .replace(/--[^\n]*\n/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

const SERVICE_ACCOUNT = /\.iam\.gserviceaccount\.com$/;

/** principalName shortens a principal for a table cell: no type prefix, no service-account domain. */
export function principalName(p) {
  if (!p) return "";
  return p.replace(/^(serviceAccount|user|group):/, "").replace(SERVICE_ACCOUNT, "");
}

/** isServiceAccount reports whether a principal is a service account. */
export function isServiceAccount(p) {
  return SERVICE_ACCOUNT.test(p ?? "") || (p ?? "").startsWith("serviceAccount:");
}

/**
 * reservationParts splits a reservation path "admin-project:LOCATION.name"
 * into its name and where it lives; anything else is all name.
 */
export function reservationParts(r) {
  const m = /^(.+):([^.:]+)\.([^.]+)$/.exec(r ?? "");
  return m ? { name: m[3], where: `${m[1]} · ${m[2]}` } : { name: r ?? "", where: "" };
}
