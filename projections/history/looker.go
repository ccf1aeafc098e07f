package history

import (
	"net/url"

	"github.com/bqobserver/bqobserver/schema"
)

// lookerStudioCreate is the Looker Studio Linking API's endpoint
// (https://developers.google.com/looker-studio/integrate/linking-api).
const lookerStudioCreate = "https://lookerstudio.google.com/reporting/create"

// The report's data sources, by their aliases in the Linking API: the
// template report (docs/LOOKER.md) adds jobs_daily first and jobs second,
// so they get Looker Studio's first two aliases.
var reportSources = []struct{ alias, view string }{
	{"ds0", schema.JobsDailyView},
	{"ds1", schema.JobsView},
}

// LookerStudioURL returns a Looker Studio Linking API URL that opens the
// report of the history b: the template report whose id is template (built
// as docs/LOOKER.md says) on the user's own project and dataset, or, with no
// template, a new report with the two data sources. Each data source is a
// BigQuery view (connector bigQuery, type TABLE) billed to b's project.
func LookerStudioURL(b schema.BigQuery, template string) string {
	q := url.Values{}
	if template != "" {
		q.Set("c.reportId", template)
	}
	q.Set("r.reportName", "BigQuery job history ("+b.Project+"."+b.Dataset+")")
	for _, s := range reportSources {
		p := "ds." + s.alias + "."
		q.Set(p+"connector", "bigQuery")
		q.Set(p+"type", "TABLE")
		q.Set(p+"projectId", b.Project)
		q.Set(p+"datasetId", b.Dataset)
		q.Set(p+"tableId", s.view)
		q.Set(p+"billingProjectId", b.Project)
		q.Set(p+"datasourceName", "bqobserver "+s.view)
	}
	return lookerStudioCreate + "?" + q.Encode()
}
