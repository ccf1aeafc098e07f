// JobList holds the loaded part of the list in the server's order and
// applies the stream's changes to it: a change to a loaded job replaces it in
// place, a job that sorts into the loaded range is inserted where it belongs,
// and a job that leaves is removed.

import { isNewer } from "./model.js";

/** JobList is an ordered, keyed list of jobs with the total the server reported. */
export class JobList {
  constructor() {
    this.reset([], 0, true);
  }

  /** reset replaces everything: jobs are the first page, total the count matching, complete whether there are no more pages. */
  reset(jobs, total, complete) {
    this.order = [];
    this.byId = new Map();
    this.positions = null;
    this.total = total;
    this.complete = complete;
    this.append(jobs, total, complete);
  }

  /** append adds the next page, skipping jobs already loaded (the stream may have inserted them). */
  append(jobs, total, complete) {
    for (const j of jobs) {
      if (this.byId.has(j.id)) continue;
      this.byId.set(j.id, j);
      this.order.push(j.id);
    }
    this.positions = null;
    this.total = Math.max(total, this.order.length);
    this.complete = complete;
  }

  get length() {
    return this.order.length;
  }

  /** at returns the job at index i. */
  at(i) {
    return this.byId.get(this.order[i]);
  }

  get(id) {
    return this.byId.get(id);
  }

  /** indexOf returns the position of a job in the list, or -1. */
  indexOf(id) {
    if (!this.positions) this.positions = new Map(this.order.map((id, i) => [id, i]));
    return this.positions.get(id) ?? -1;
  }

  /**
   * upsert applies a changed or new job. A loaded job is replaced in place
   * unless the change is older than what is shown; an unknown job is
   * inserted in order when it sorts within the loaded range (cmp orders
   * jobs as the server does). It returns what it did: "patched", "inserted",
   * "outside" (beyond the loaded range) or "older".
   */
  upsert(job, isNew, cmp) {
    const cur = this.byId.get(job.id);
    if (cur) {
      if (!isNewer(cur, job)) return "older";
      this.byId.set(job.id, job);
      return "patched";
    }
    const last = this.at(this.order.length - 1);
    if (!this.complete && last && cmp(job, last) > 0) {
      if (isNew) this.total++;
      return "outside";
    }
    this.order.splice(this.insertionPoint(job, cmp), 0, job.id);
    this.byId.set(job.id, job);
    this.positions = null;
    // A changed job the page had not loaded was already in the server's total.
    this.total = Math.max(this.total + (isNew ? 1 : 0), this.order.length);
    return "inserted";
  }

  insertionPoint(job, cmp) {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cmp(this.at(mid), job) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** remove takes a job out of the list (loaded or not) and returns whether it was loaded. */
  remove(id) {
    this.total = Math.max(0, this.total - 1);
    if (!this.byId.delete(id)) {
      this.total = Math.max(this.total, this.order.length);
      return false;
    }
    const i = this.indexOf(id);
    this.order.splice(i, 1);
    this.positions = null;
    return true;
  }
}
