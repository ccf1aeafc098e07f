// The places outside the product the service links to (api/v1/links): the
// job history's Looker Studio report, shown in the page's header when the
// history is written to BigQuery.

/** showLinks points anchor at the history report and shows it, if there is one. */
export async function showLinks(anchor) {
  let links;
  try {
    const res = await fetch("api/v1/links", { headers: { Accept: "application/json" } });
    if (!res.ok) return;
    links = await res.json();
  } catch {
    return; // no link is better than a broken one
  }
  const report = links?.history_report;
  if (typeof report === "string" && URL.canParse(report) && new URL(report).protocol === "https:") {
    anchor.href = report;
    anchor.title = `Open the job history of ${links.history_dataset ?? "BigQuery"} in Looker Studio`;
    anchor.hidden = false;
  }
}
