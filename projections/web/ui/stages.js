// The job's query stages and timeline as the BigQuery jobs API reported
// them when the panel asked (the detail's "live" part): a compact plan, one
// row per stage with its progress, and a sparkline of the work done.

import * as fmt from "./format.js";

const STATUS_CLASS = { COMPLETE: "s-done", RUNNING: "s-running", FAILED: "stale", CANCELLED: "stale" };

/** stagesSection renders live (may be null) or, without it, why there is none (liveError, may be ""). */
export function stagesSection(live, liveError, now = Date.now()) {
  const s = el("section", "d-stages");
  s.append(el("h3", "", "Stages"));
  if (!live) {
    s.append(el("p", "muted", liveError ? `Not available from the BigQuery API: ${liveError}` : "Not asked: enrichment is off."));
    return s;
  }
  const seen = Date.parse(live.observed_at);
  s.append(el("p", "muted stages-note", `As the BigQuery API reported it${Number.isFinite(seen) ? ` at ${fmt.clock(seen, now)}` : ""}.`));
  if (!live.stages?.length) {
    s.append(el("p", "muted", "No query plan: only queries have one, and scripts and cached results do not."));
    return s;
  }
  const ol = el("ol", "stages");
  ol.append(...live.stages.map(stageRow));
  s.append(ol);
  const spark = sparkline(live.timeline ?? []);
  if (spark) s.append(spark);
  return s;
}

function stageRow(st) {
  const li = el("li", "stage");
  const head = el("div", "stage-head");
  head.append(el("span", "stage-name mono", st.name), el("span", `badge ${STATUS_CLASS[st.status] ?? "plain"}`, (st.status ?? "").toLowerCase()));
  const done = st.parallel_inputs > 0 ? st.completed_parallel_inputs / st.parallel_inputs : st.status === "COMPLETE" ? 1 : 0;
  const bar = el("span", "bar");
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  bar.setAttribute("aria-valuenow", String(Math.round(done * 100)));
  bar.setAttribute("aria-label", `${st.name}: ${fmt.percent(done)} of its inputs done`);
  const fill = el("span", "fill");
  fill.style.width = fmt.percent(done);
  bar.append(fill);
  // A count BigQuery gave that cannot be true is left out of the answer:
  // the facts that need it are not shown.
  const facts = [
    known([st.completed_parallel_inputs, st.parallel_inputs], (done, all) => `${fmt.integer(done)} of ${fmt.integer(all)} inputs`),
    known([st.records_read, st.records_written], (read, written) => `${fmt.compact(read)} records read, ${fmt.compact(written)} written`),
    known([st.slot_ms], (ms) => `${fmt.integer(ms)} slot-ms`),
    `wait ${ratio(st.wait_ratio_avg, st.wait_ratio_max)} · compute ${ratio(st.compute_ratio_avg, st.compute_ratio_max)}`,
  ].filter((f) => f !== "");
  const took = stageTime(st);
  if (took) facts.push(took);
  li.append(head, bar, el("p", "stage-facts", facts.join(" · ")));
  return li;
}

/** known is show(...values) when every value is known, else "". */
function known(values, show) {
  return values.every((v) => v != null) ? show(...values) : "";
}

/** ratio shows an average and a maximum ratio as percentages. */
function ratio(avg, most) {
  return `${fmt.percent(avg ?? 0)} avg, ${fmt.percent(most ?? 0)} max`;
}

function stageTime(st) {
  const start = Date.parse(st.start_time ?? "");
  const end = Date.parse(st.end_time ?? "");
  if (!Number.isFinite(start)) return "";
  return Number.isFinite(end) ? `took ${fmt.duration(end - start)}` : `started ${fmt.clock(start)}`;
}

/** sparkline draws the units completed over the elapsed time, with the last sample in words. */
function sparkline(samples) {
  if (samples.length < 2) return null;
  const w = 240, h = 36;
  const maxT = Math.max(...samples.map((x) => x.elapsed_ms), 1);
  const maxU = Math.max(...samples.map((x) => x.completed_units + x.active_units + x.pending_units), 1);
  const pts = samples.map((x) => `${((x.elapsed_ms / maxT) * w).toFixed(1)},${(h - (x.completed_units / maxU) * h).toFixed(1)}`);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("class", "sparkline");
  svg.setAttribute("aria-hidden", "true");
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", pts.join(" "));
  svg.append(line);
  const last = samples[samples.length - 1];
  const fig = el("figure", "stages-timeline");
  const cap = el("figcaption", "muted",
    `After ${fmt.duration(last.elapsed_ms)}: ${fmt.integer(last.completed_units)} units done, ${fmt.integer(last.active_units)} active, ` +
      `${fmt.integer(last.pending_units)} pending; ${fmt.integer(last.slot_ms)} slot-ms.`);
  fig.append(svg, cap);
  return fig;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}
