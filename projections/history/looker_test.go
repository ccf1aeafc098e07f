package history

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/schema"
)

// TestLookerStudioURL checks the Linking API URL's parameters: the report,
// and the two data sources on the user's project and dataset.
func TestLookerStudioURL(t *testing.T) {
	b := schema.BigQuery{Project: "acme-obs", Dataset: "history", Location: "EU"}
	source := func(alias, view string) map[string]string {
		p := "ds." + alias + "."
		return map[string]string{p + "connector": "bigQuery", p + "type": "TABLE", p + "projectId": "acme-obs",
			p + "datasetId": "history", p + "tableId": view, p + "billingProjectId": "acme-obs", p + "datasourceName": "bqobserver " + view}
	}
	want := map[string]string{"r.reportName": "BigQuery job history (acme-obs.history)"}
	for _, s := range []map[string]string{source("ds0", "jobs_daily"), source("ds1", "jobs")} {
		for k, v := range s {
			want[k] = v
		}
	}
	for _, template := range []string{"", "0b7c55d2-4d8e-4e5a-9a1e-3f2c1b0a9e8d"} {
		raw := LookerStudioURL(b, template)
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Scheme + "://" + u.Host + u.Path; got != "https://lookerstudio.google.com/reporting/create" {
			t.Errorf("endpoint %s, want the Linking API's", got)
		}
		got := map[string]string{}
		for k, vs := range u.Query() {
			if len(vs) != 1 {
				t.Errorf("parameter %s has %d values", k, len(vs))
			}
			got[k] = vs[0]
		}
		w := map[string]string{}
		for k, v := range want {
			w[k] = v
		}
		if template != "" {
			w["c.reportId"] = template
		}
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("template %q: parameters (-want +got):\n%s", template, diff)
		}
		if strings.Contains(raw, " ") {
			t.Errorf("the URL %q is not escaped", raw)
		}
	}
}
