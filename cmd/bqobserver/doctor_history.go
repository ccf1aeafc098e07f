package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"google.golang.org/api/googleapi"

	"github.com/bqobserver/bqobserver/schema"
)

// historyPermissions are what the history sink needs of job_versions:
// appending rows through the Storage Write API, and reading them for
// `history check`.
var historyPermissions = []string{"bigquery.tables.updateData", "bigquery.tables.getData"}

// historyPermissionsTimeout bounds BigQuery's answer about permissions.
const historyPermissionsTimeout = 15 * time.Second

// historyRole grants historyPermissions on the dataset.
const historyRole = "roles/bigquery.dataEditor"

// historyChecks check the BigQuery history: its dataset, table and views
// as setup leaves them, and, where BigQuery tells, that the service may
// write and read job_versions.
func (d *doctor) historyChecks(ctx context.Context) []check {
	if d.history == nil {
		return []check{{Area: "BigQuery", Resource: "history", Status: statusSkipped,
			Detail: "no BigQuery backend is configured: the history is served from the event log only"}}
	}
	var out []check
	for _, p := range schema.CheckBigQuery(ctx, d.history.Client, d.history.Schema) {
		c := check{Area: "BigQuery", Resource: p.Kind + " " + p.Name, Status: statusOK, Detail: "as setup leaves it"}
		if p.Err != nil {
			c.Status, c.Detail, c.Fix = statusBroken, p.Err.Error(), d.historyFix(p.Err)
		}
		if p.Kind == "table" && p.Err == nil {
			c.Status, c.Detail = d.historyPermissions(ctx)
			if c.Status == statusBroken {
				c.Fix = d.historyGrant()
			}
		}
		out = append(out, c)
	}
	if d.history.Mode == modeEmulator {
		out = append(out, d.storageEmulatorCheck())
	}
	return out
}

// storageEmulatorCheck checks that the emulator's Storage Write API, which
// the service appends rows through (run refuses to start without it), is
// configured. A Google Cloud history has it at Google's address.
func (d *doctor) storageEmulatorCheck() check {
	c := check{Area: "BigQuery", Resource: "Storage Write API", Status: statusOK, Detail: "at " + d.storageEmulator}
	if d.storageEmulator == "" {
		c.Status, c.Detail = statusBroken, "BIGQUERY_EMULATOR_HOST is set but BIGQUERY_STORAGE_EMULATOR_HOST is not: the service appends the history's rows through the emulator's Storage Write API, and does not start without it"
		c.Fix = "set BIGQUERY_STORAGE_EMULATOR_HOST to the emulator's gRPC address (its --grpc-port)"
	}
	return c
}

// historyPermissions asks BigQuery which of historyPermissions the service
// has on job_versions. The emulator has no IAM (it never answers the
// question), so it is not asked; a backend that answers that it cannot tell
// is not a failure either. The question has its own deadline, like every
// other check.
func (d *doctor) historyPermissions(ctx context.Context) (string, string) {
	if d.history.Mode == modeEmulator {
		return statusOK, "as setup leaves it; the emulator has no permissions to test"
	}
	ctx, cancel := context.WithTimeout(ctx, historyPermissionsTimeout)
	defer cancel()
	b := d.history.Schema
	t := d.history.Client.DatasetInProject(b.Project, b.Dataset).Table(schema.JobVersionsTable)
	have, err := t.IAM().TestPermissions(ctx, historyPermissions)
	var ge *googleapi.Error
	switch {
	case errors.As(err, &ge) && (ge.Code == http.StatusNotFound || ge.Code == http.StatusNotImplemented):
		return statusOK, "as setup leaves it; this backend does not report permissions"
	case err != nil:
		return statusBroken, "testing permissions: " + err.Error()
	}
	var missing []string
	for _, p := range historyPermissions {
		if !slices.Contains(have, p) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return statusBroken, "missing " + strings.Join(missing, ", ")
	}
	return statusOK, "as setup leaves it; may append and read rows"
}

func (d *doctor) historyFix(err error) string {
	var ge *googleapi.Error
	switch {
	case errors.Is(err, schema.ErrHistoryNotApplied):
		return fixSetup
	case errors.As(err, &ge) && ge.Code == http.StatusForbidden:
		return d.historyGrant()
	}
	return "check that BigQuery is reachable from the service, and the --bigquery-* flags"
}

func (d *doctor) historyGrant() string {
	b := d.history.Schema
	return "grant " + historyRole + " on dataset " + b.Project + "." + b.Dataset +
		" (and roles/bigquery.jobUser on project " + b.Project + " for `history check`) to the service's identity"
}
