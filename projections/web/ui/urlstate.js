// The page's state lives in its URL query, so a link shows the same list and
// back and forward walk through what the user did.

import { DEFAULT_SORT, HISTORY_SORT, HISTORY_SORTS, SORTS, formatSort, parseSort } from "./model.js";

/** FILTERS are the single-valued filters with a control on the page, named as in the API. */
export const FILTERS = ["q", "project", "user", "reservation", "location", "state", "type"];

/** EXTRA are filters the page passes through from the URL without a control of their own. */
export const EXTRA = ["statement_type", "min_running"];

/**
 * VIEW are the parameters of the view shown: view ("" for the running list,
 * "history" for the finished jobs of a time range) and the history's range,
 * a preset (range, such as "6h") or its ends (from and to, RFC 3339).
 */
export const VIEW = ["view", "range", "from", "to"];

/** empty returns the state of a page with no filters. */
export function empty() {
  const s = { sort: parseSort(DEFAULT_SORT), labels: [], job: "" };
  for (const f of [...FILTERS, ...EXTRA, ...VIEW]) s[f] = "";
  return s;
}

/** read parses a URL query into a page state. */
export function read(search) {
  const p = new URLSearchParams(search);
  const s = empty();
  for (const f of [...FILTERS, ...EXTRA, ...VIEW]) s[f] = (p.get(f) ?? "").trim();
  if (s.view !== "history") s.view = s.range = s.from = s.to = "";
  s.labels = p.getAll("label").filter((l) => l.includes("="));
  s.sort = parseSort(p.get("sort") ?? defaultSort(s), sortsOf(s), defaultSort(s));
  s.job = p.get("job") ?? "";
  return s;
}

/** sortsOf returns the orders of the view of s. */
export function sortsOf(s) {
  return s.view === "history" ? HISTORY_SORTS : SORTS;
}

/** defaultSort returns the order of the view of s when the URL names none. */
export function defaultSort(s) {
  return s.view === "history" ? HISTORY_SORT : DEFAULT_SORT;
}

/** viewParams returns the view parameters of s, without empty ones. */
export function viewParams(s) {
  const p = new URLSearchParams();
  for (const f of VIEW) if (s[f]) p.set(f, s[f]);
  return p;
}

/** filterParams returns the filters of s as API query parameters, without empty ones. */
export function filterParams(s) {
  const p = new URLSearchParams();
  for (const f of [...FILTERS, ...EXTRA]) if (s[f]) p.set(f, s[f]);
  for (const l of s.labels) p.append("label", l);
  return p;
}

/** write returns the URL query for s: filters, the view, a non-default sort, then the open job. */
export function write(s) {
  const p = filterParams(s);
  for (const [k, v] of viewParams(s)) p.set(k, v);
  const sort = formatSort(s.sort);
  if (sort !== defaultSort(s)) p.set("sort", sort);
  if (s.job) p.set("job", s.job);
  const q = p.toString();
  return q ? `?${q}` : "";
}

/** sameList reports whether a and b show the same list (same view, range, filters and sort). */
export function sameList(a, b) {
  return (
    filterParams(a).toString() === filterParams(b).toString() &&
    viewParams(a).toString() === viewParams(b).toString() &&
    formatSort(a.sort) === formatSort(b.sort)
  );
}

/** activeCount is how many filters other than the search are set. */
export function activeCount(s) {
  return FILTERS.filter((f) => f !== "q" && s[f]).length + EXTRA.filter((f) => s[f]).length + s.labels.length;
}
