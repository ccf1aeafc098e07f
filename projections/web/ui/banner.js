// The diagnostics banner: the projects enrichment cannot see into, with
// the permission each lacks and the grant that fixes it. Hidden while there
// are none.

/** MAX_LISTED is how many projects the banner names; the rest are counted. */
const MAX_LISTED = 20;

/** showDiagnostics renders d (the API's diagnostics) in the banner element box. */
export function showDiagnostics(box, d) {
  const problems = d?.problems ?? [];
  box.hidden = problems.length === 0;
  if (box.hidden) {
    box.replaceChildren();
    return;
  }
  const projects = [...new Set(problems.map((p) => p.project))];
  const head = el("p", "banner-head",
    `The service cannot see into ${projects.length === 1 ? "project " + projects[0] : projects.length + " projects"}: ` +
      "their jobs get no live progress, and a job whose completion entry is lost stays listed there.");
  const roles = [...new Set(problems.map((p) => p.role))];
  const fix = el("p", "banner-fix", `Fix: grant ${roles.join(", ")} to the service's identity on the organization, or on each project (or its folder).`);
  const more = el("details", "banner-more");
  more.append(el("summary", "", "What each project denies"));
  const ul = el("ul", "");
  for (const p of problems.slice(0, MAX_LISTED)) {
    const li = el("li", "");
    li.append(el("strong", "mono", p.project), ` ${p.method} needs ${p.permission}. ${p.fix}`);
    if (p.message) li.append(el("span", "muted banner-message", ` ${p.message}`));
    ul.append(li);
  }
  if (problems.length > MAX_LISTED) ul.append(el("li", "muted", `and ${problems.length - MAX_LISTED} more (see /api/v1/diagnostics)`));
  more.append(ul);
  box.replaceChildren(head, fix, more);
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}
