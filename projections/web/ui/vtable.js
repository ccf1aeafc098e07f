// VirtualTable renders a JobList as an ARIA grid with only the rows in view
// (plus a margin) in the DOM, reusing row elements as the list scrolls. Rows
// are keyed by job, so a change to a job rewrites only its cells, and the
// first visible row stays put when rows are inserted or removed above it.

import { setText } from "./columns.js";

/** OVERSCAN is how many rows are rendered beyond each edge of the view. */
const OVERSCAN = 8;

/** VirtualTable is the scrolling job grid. */
export class VirtualTable {
  /**
   * grid is the scroll container with role=grid; handlers are onOpen(id)
   * (Enter or click on a row), onSort(name) (a header click) and
   * onNeedMore() (the view nears the end of the loaded rows).
   */
  constructor(grid, columns, list, handlers) {
    this.grid = grid;
    this.columns = columns;
    this.list = list;
    this.handlers = handlers;
    /** now is the server's time as the page reckons it (handlers.now), or the browser's. */
    this.now = handlers.now ?? Date.now;
    this.rows = new Map();
    this.free = [];
    this.activeId = "";
    this.activeIndex = -1;
    this.selectedId = "";
    this.frame = 0;
    this.build();
    this.measure();
  }

  build() {
    this.head = div("vt-row vt-head", "row");
    this.head.setAttribute("aria-rowindex", "1");
    for (const col of this.columns) this.head.append(this.headerCell(col));
    this.body = div("vt-body", "rowgroup");
    this.grid.append(this.head, this.body);
    this.grid.addEventListener("scroll", () => this.schedule(), { passive: true });
    this.body.addEventListener("keydown", (e) => this.onKey(e));
    this.body.addEventListener("click", (e) => this.onClick(e));
    this.body.addEventListener("focusin", (e) => this.onFocus(e));
    new ResizeObserver(() => {
      this.measure();
      this.schedule();
    }).observe(this.grid);
  }

  headerCell(col) {
    const cell = div(`vt-cell c-${col.id}`, "columnheader");
    if (!col.sort) {
      cell.textContent = col.label;
      return cell;
    }
    const b = document.createElement("button");
    b.type = "button";
    b.className = "sort-button";
    b.append(col.label, span("sort-arrow"));
    b.addEventListener("click", () => this.handlers.onSort(col.sort));
    cell.append(b);
    cell.dataset.sort = col.sort;
    return cell;
  }

  /** setSort marks the header of the active sort. */
  setSort(sort) {
    for (const cell of this.head.children) {
      if (!cell.dataset.sort) continue;
      const on = cell.dataset.sort === sort.name;
      cell.setAttribute("aria-sort", on ? (sort.desc ? "descending" : "ascending") : "none");
      setText(cell.querySelector(".sort-arrow"), on ? (sort.desc ? "▼" : "▲") : "");
    }
  }

  measure() {
    const h = parseFloat(getComputedStyle(this.grid).getPropertyValue("--row-h"));
    const changed = Number.isFinite(h) && h > 0 && h !== this.rowH;
    if (changed) this.rowH = h;
    this.rowH ??= 46;
    if (!changed) return;
    for (const [id, el] of this.rows) {
      el.index = -1; // force place to move it with the new height
      this.place(el, this.list.indexOf(id));
    }
  }

  /** schedule renders on the next animation frame, once however often it is called. */
  schedule() {
    this.frame ||= requestAnimationFrame(() => this.render());
  }

  /** anchor remembers the first visible row, before the list changes. */
  anchor() {
    const top = this.grid.scrollTop;
    if (top <= 0) return null;
    const i = Math.floor(top / this.rowH);
    const id = this.list.order[i];
    return id ? { id, offset: top - i * this.rowH } : null;
  }

  /** restore scrolls so the anchored row is where it was, after the list changed. */
  restore(a) {
    if (!a) return;
    const i = this.list.indexOf(a.id);
    if (i >= 0) this.grid.scrollTop = i * this.rowH + a.offset;
  }

  /** reset shows a new list from the top. */
  reset() {
    for (const el of this.rows.values()) this.recycle(el);
    this.rows.clear();
    this.activeId = "";
    this.grid.scrollTop = 0;
    this.render();
  }

  /** render draws the rows in view now. */
  render(now = this.now()) {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    const n = this.list.length;
    this.body.style.height = `${n * this.rowH}px`;
    this.grid.setAttribute("aria-rowcount", String(this.list.total + 1));
    const { first, last } = this.range();
    const want = new Map();
    for (let i = first; i < last; i++) want.set(this.list.order[i], i);
    const hadFocus = this.body.contains(document.activeElement);
    const moved = this.keepActive(Math.floor(this.grid.scrollTop / this.rowH));
    if (this.activeId) want.set(this.activeId, this.activeIndex);
    for (const [id, el] of this.rows) if (!want.has(id)) this.recycle(el, id);
    for (const [id, i] of want) this.show(id, i, now);
    if (moved && hadFocus) this.rows.get(this.activeId)?.focus({ preventScroll: true });
    if (!this.list.complete && last >= n - OVERSCAN * 4) this.handlers.onNeedMore();
  }

  // keepActive keeps a roving-focus row: when the active job left the list,
  // its neighbour takes over. It reports whether the active row changed.
  keepActive(top) {
    const n = this.list.length;
    const i = this.list.indexOf(this.activeId);
    if (i >= 0) {
      this.activeIndex = i;
      return false;
    }
    const had = this.activeId !== "";
    this.activeIndex = n ? Math.min(had ? this.activeIndex : top, n - 1) : -1;
    this.activeId = n ? this.list.order[this.activeIndex] : "";
    return had;
  }

  range() {
    const top = this.grid.scrollTop;
    const view = this.grid.clientHeight;
    const first = Math.max(0, Math.floor(top / this.rowH) - OVERSCAN);
    const last = Math.min(this.list.length, Math.ceil((top + view) / this.rowH) + OVERSCAN);
    return { first, last };
  }

  show(id, i, now) {
    let el = this.rows.get(id);
    if (!el) {
      el = this.free.pop() ?? this.makeRow();
      el.hidden = false;
      el.dataset.id = id;
      this.rows.set(id, el);
    }
    const job = this.list.get(id);
    if (el.job !== job) this.fill(el, job, now);
    this.place(el, i);
    el.tabIndex = id === this.activeId ? 0 : -1;
    el.setAttribute("aria-selected", String(id === this.selectedId));
  }

  place(el, i) {
    if (el.index === i) return;
    el.index = i;
    el.style.transform = `translateY(${i * this.rowH}px)`;
    el.setAttribute("aria-rowindex", String(i + 2));
  }

  makeRow() {
    const row = div("vt-row", "row");
    for (const col of this.columns) row.append(col.make(div(`vt-cell c-${col.id}`, "gridcell")));
    this.body.append(row);
    return row;
  }

  fill(el, job, now) {
    el.job = job;
    el.classList.toggle("is-stale", job.stale);
    this.columns.forEach((col, k) => col.fill(el.children[k], job, now));
  }

  recycle(el, id) {
    el.hidden = true;
    el.job = null;
    el.index = -1;
    this.rows.delete(id ?? el.dataset.id);
    this.free.push(el);
  }

  /** tick refreshes the clock-driven cells of the rows in the DOM. */
  tick(now) {
    const live = this.columns.map((c, k) => (c.live ? k : -1)).filter((k) => k >= 0);
    for (const el of this.rows.values()) {
      if (el.job) for (const k of live) this.columns[k].fill(el.children[k], el.job, now);
    }
  }

  /** select marks the job whose detail is open ("" for none). */
  select(id) {
    this.selectedId = id;
    for (const [rid, el] of this.rows) el.setAttribute("aria-selected", String(rid === id));
  }

  /** focusRow moves the keyboard focus to a job's row, scrolling it into view. */
  focusRow(id) {
    const i = this.list.indexOf(id);
    if (i < 0) return;
    this.activeId = id;
    this.reveal(i);
    this.render();
    this.rows.get(id)?.focus({ preventScroll: true });
  }

  /** focusActive focuses the row that last had focus, or the first. */
  focusActive() {
    if (this.list.length) this.focusRow(this.activeId || this.list.order[0]);
  }

  reveal(i) {
    const head = this.head.offsetHeight;
    const top = i * this.rowH;
    const view = this.grid.clientHeight - head;
    if (top < this.grid.scrollTop) this.grid.scrollTop = top;
    else if (top + this.rowH > this.grid.scrollTop + view) this.grid.scrollTop = top + this.rowH - view;
  }

  onKey(e) {
    const row = e.target.closest?.(".vt-row");
    if (!row || e.target !== row || e.altKey || e.ctrlKey || e.metaKey) return;
    const i = this.list.indexOf(row.dataset.id);
    const page = Math.max(1, Math.floor((this.grid.clientHeight - this.head.offsetHeight) / this.rowH) - 1);
    const moves = { ArrowDown: i + 1, ArrowUp: i - 1, PageDown: i + page, PageUp: i - page, Home: 0, End: this.list.length - 1 };
    if (e.key in moves) {
      e.preventDefault();
      this.focusRow(this.list.order[Math.max(0, Math.min(this.list.length - 1, moves[e.key]))]);
    } else if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      this.handlers.onOpen(row.dataset.id);
    }
  }

  onClick(e) {
    if (e.target.closest("a")) return;
    const row = e.target.closest(".vt-row");
    if (!row || window.getSelection()?.toString()) return;
    this.activeId = row.dataset.id;
    this.handlers.onOpen(row.dataset.id);
  }

  onFocus(e) {
    const row = e.target.closest?.(".vt-row");
    if (!row || row.dataset.id === this.activeId) return;
    this.activeId = row.dataset.id;
    for (const [id, el] of this.rows) el.tabIndex = id === this.activeId ? 0 : -1;
  }
}

function div(cls, role) {
  const d = document.createElement("div");
  d.className = cls;
  if (role) d.setAttribute("role", role);
  return d;
}

function span(cls) {
  const s = document.createElement("span");
  s.className = cls;
  s.setAttribute("aria-hidden", "true");
  return s;
}
