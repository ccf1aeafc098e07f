package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/bigtable"
	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bqobserver/bqobserver/enrich/jobsapi"
	"github.com/bqobserver/bqobserver/events"
)

// fixSetup is the fix of anything the service needs that does not exist.
const fixSetup = "run `bqobserver setup` with the same flags, with admin rights (or `run --auto-create`)"

// pubsubResource is a topic or subscription the service uses, the
// permissions it needs there and the role that grants them.
type pubsubResource struct {
	kind, name  string
	permissions []string
	role        string
	topic       string // a subscription's topic; "" for a topic
	push        bool   // a push subscription, which must have an endpoint
}

func (d *doctor) pubsubResources() []pubsubResource {
	g := d.g
	out := []pubsubResource{{kind: "topic", name: g.AuditTopic}}
	if g.AuditSubscription != "" { // else push-only
		out = append(out, pubsubResource{kind: "subscription", name: g.AuditSubscription, permissions: []string{"pubsub.subscriptions.consume", "pubsub.subscriptions.get"},
			role: "roles/pubsub.subscriber and roles/pubsub.viewer", topic: g.AuditTopic})
	}
	if d.push != "" {
		// Pub/Sub pushes with its own service agent: the service needs no
		// permission on the subscription.
		out = append(out, pubsubResource{kind: "subscription", name: d.push, topic: g.AuditTopic, push: true})
	}
	out = append(out,
		pubsubResource{kind: "topic", name: g.EventsTopic, permissions: []string{"pubsub.topics.publish", "pubsub.topics.attachSubscription"}, role: "roles/pubsub.publisher and roles/pubsub.subscriber"},
		pubsubResource{kind: "topic", name: g.DeadLetterTopic, permissions: []string{"pubsub.topics.publish"}, role: "roles/pubsub.publisher"},
		pubsubResource{kind: "subscription", name: g.DeadLetterSubscription, topic: g.DeadLetterTopic})
	if d.historyOn {
		out = append(out, pubsubResource{kind: "subscription", name: g.HistorySubscription,
			permissions: []string{"pubsub.subscriptions.consume", "pubsub.subscriptions.get"}, role: "roles/pubsub.subscriber and roles/pubsub.viewer", topic: g.EventsTopic})
	}
	return out
}

// pubsubChecks check that every topic and subscription exists, that each
// subscription is attached to its topic (not to another, nor to a deleted
// one), and, where the backend tells, that the service may use them.
func (d *doctor) pubsubChecks(ctx context.Context) []check {
	if d.inProcess["Pub/Sub"] {
		return []check{inProcessCheck("Pub/Sub", "--project or PUBSUB_EMULATOR_HOST")}
	}
	var out []check
	if d.g.AuditSubscription == "" && d.push == "" {
		out = append(out, check{Area: "Pub/Sub", Resource: "audit topic's subscriptions", Status: statusBroken,
			Detail: "--audit-subscription is empty (push-only) and no --push-subscription is named: nothing checked receives the audit entries",
			Fix:    "name the push subscription with --push-subscription (setup --push-url makes bqobserver-push)"})
	}
	for _, r := range d.pubsubResources() {
		c := check{Area: "Pub/Sub", Resource: r.kind + " " + r.name}
		path := "projects/" + d.project + "/" + r.kind + "s/" + r.name
		if err := d.pubsubExists(ctx, r, path); err != nil {
			c.Status, c.Detail, c.Fix = statusBroken, err.Error(), pubsubFix(err, r, path)
		} else {
			c.Status, c.Detail = d.pubsubPermissions(ctx, r, path)
			if c.Status == statusBroken {
				c.Fix = "grant " + r.role + " on " + path + " to the service's identity"
			}
		}
		out = append(out, c)
	}
	return out
}

func (d *doctor) pubsubExists(ctx context.Context, r pubsubResource, path string) error {
	if r.kind == "topic" {
		_, err := d.ps.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: path})
		return err
	}
	sub, err := d.ps.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: path})
	if err != nil {
		return err
	}
	if want := "projects/" + d.project + "/topics/" + r.topic; r.topic != "" && sub.Topic != want {
		return fmt.Errorf("attached to %s, not to %s", sub.Topic, want)
	}
	if r.push && sub.GetPushConfig().GetPushEndpoint() == "" {
		return errNotPush
	}
	return nil
}

// errNotPush is a push subscription that has no push endpoint: nobody
// pulls from it, so what it receives waits until it expires.
var errNotPush = errors.New("has no push endpoint: it is a pull subscription, which nothing reads")

// inProcessCheck is the one line of a backend that is an in-process
// stand-in, which ends with the doctor: there is nothing to check.
func inProcessCheck(area, configure string) check {
	return check{Area: area, Resource: "-", Status: statusSkipped,
		Detail: "none is configured (" + configure + "): the service would run on an in-process stand-in"}
}

func pubsubFix(err error, r pubsubResource, path string) string {
	if errors.Is(err, errNotPush) {
		return "run `bqobserver setup --push-url … --push-subscription " + r.name + "`"
	}
	switch status.Code(err) {
	case codes.NotFound:
		return fixSetup
	case codes.PermissionDenied:
		return "grant roles/pubsub.viewer on " + path + " to the service's identity"
	case codes.Unknown:
		return "recreate the subscription attached to topic " + r.topic + ": once it is drained, delete it and " + fixSetup
	}
	return "check that Pub/Sub is reachable from the service"
}

// pubsubPermissions asks the backend which of r's permissions the caller
// has. A backend that cannot tell (an emulator) is not a failure.
func (d *doctor) pubsubPermissions(ctx context.Context, r pubsubResource, path string) (string, string) {
	if len(r.permissions) == 0 {
		return statusOK, "exists"
	}
	req := &iampb.TestIamPermissionsRequest{Resource: path, Permissions: r.permissions}
	var resp *iampb.TestIamPermissionsResponse
	var err error
	if r.kind == "topic" {
		resp, err = d.ps.TopicAdminClient.TestIamPermissions(ctx, req)
	} else {
		resp, err = d.ps.SubscriptionAdminClient.TestIamPermissions(ctx, req)
	}
	switch {
	case status.Code(err) == codes.Unimplemented:
		return statusOK, "exists; this backend does not report permissions"
	case err != nil:
		return statusBroken, "testing permissions: " + err.Error()
	}
	var missing []string
	for _, p := range r.permissions {
		if !slices.Contains(resp.Permissions, p) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return statusBroken, "missing " + strings.Join(missing, ", ")
	}
	return statusOK, "exists; " + strings.Join(r.permissions, ", ") + " granted"
}

// bigtableFamilies are the column families the service reads and writes.
var bigtableFamilies = []string{"e", "o", "l", "p"}

// bigtableChecks check, where the identity may see it, that the table has
// every family, and that the table can be read and written (a row of the
// doctor's own in the lease family, written and deleted).
func (d *doctor) bigtableChecks(ctx context.Context) []check {
	if d.inProcess["Bigtable"] {
		return []check{inProcessCheck("Bigtable", "--bigtable-instance or BIGTABLE_EMULATOR_HOST")}
	}
	table := d.g.BigtableTable
	fam, missing := d.familyCheck(ctx, table)
	rw := check{Area: "Bigtable", Resource: "table " + table, Status: statusOK, Detail: "read and written"}
	switch err := readWrite(ctx, d.bt.Open(table)); {
	case slices.Contains(missing, "l"):
		rw.Status, rw.Detail = statusSkipped, "writing needs family l"
	case err != nil:
		rw.Status, rw.Detail, rw.Fix = statusBroken, err.Error(), bigtableFix(err)
	}
	return []check{rw, fam}
}

// familyCheck reports whether the table has every family the service
// uses, and those it lacks.
func (d *doctor) familyCheck(ctx context.Context, table string) (check, []string) {
	c := check{Area: "Bigtable", Resource: "families of " + table}
	info, err := d.admin.TableInfo(ctx, table)
	switch {
	case status.Code(err) == codes.NotFound:
		c.Status, c.Detail, c.Fix = statusBroken, "no such table", fixSetup
		return c, nil
	case err != nil:
		c.Status, c.Detail = statusSkipped, "the identity may not read the schema: "+status.Convert(err).Message()
		return c, nil
	}
	var missing []string
	for _, f := range bigtableFamilies {
		if !slices.ContainsFunc(info.FamilyInfos, func(fi bigtable.FamilyInfo) bool { return fi.Name == f }) {
			missing = append(missing, f)
		}
	}
	c.Status, c.Detail = statusOK, "families "+strings.Join(bigtableFamilies, ", ")
	if len(missing) > 0 {
		c.Status, c.Detail, c.Fix = statusBroken, "missing families "+strings.Join(missing, ", "), fixSetup
	}
	return c, missing
}

// readWrite reads a row of the doctor's own, writes it and deletes it,
// and returns the first failure.
func readWrite(ctx context.Context, tbl *bigtable.Table) error {
	const row = "l#r#bqobserver-doctor"
	if _, err := tbl.ReadRow(ctx, row); err != nil {
		return fmt.Errorf("reading: %w", err)
	}
	m := bigtable.NewMutation()
	m.Set("l", "h", bigtable.Now(), []byte("0000000000000000"))
	if err := tbl.Apply(ctx, row, m); err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	del := bigtable.NewMutation()
	del.DeleteRow()
	if err := tbl.Apply(ctx, row, del); err != nil {
		return fmt.Errorf("deleting: %w", err)
	}
	return nil
}

func bigtableFix(err error) string {
	switch status.Code(err) {
	case codes.NotFound:
		return fixSetup
	case codes.PermissionDenied:
		return "grant roles/bigtable.user on the Bigtable instance to the service's identity"
	}
	return "check that Bigtable is reachable from the service"
}

// jobsAPIChecks check, on a sample of projects, that the service may list
// every user's jobs and get one.
func (d *doctor) jobsAPIChecks(ctx context.Context) []check {
	if d.api == nil {
		return []check{{Area: "BigQuery jobs API", Resource: "-", Status: statusSkipped,
			Detail: "no jobs API in this mode: give --bigquery-endpoint (for example the simulation's) to check one"}}
	}
	projects, err := d.sampleProjects(ctx)
	if err != nil || len(projects) == 0 {
		detail := "no project had jobs in the last 30 days: name some with --projects"
		if err != nil {
			detail = "listing recently active projects: " + err.Error()
		}
		return []check{{Area: "BigQuery jobs API", Resource: "-", Status: statusSkipped, Detail: detail}}
	}
	var out []check
	for _, p := range projects {
		out = append(out, d.jobsAPICheck(ctx, p)...)
	}
	return out
}

func (d *doctor) sampleProjects(ctx context.Context) ([]string, error) {
	if len(d.projects) > 0 {
		return d.projects, nil
	}
	active, err := d.reg.Active(ctx, time.Now().Add(-30*24*time.Hour))
	if err != nil {
		return nil, err
	}
	if len(active) <= d.sample {
		return active, nil
	}
	out := make([]string, 0, d.sample) // spread over the sorted list
	for i := range d.sample {
		out = append(out, active[i*len(active)/d.sample])
	}
	return out, nil
}

// jobsAPICheck lists one open job of project and gets it (or a job that
// does not exist: a 404 shows the permission is there).
func (d *doctor) jobsAPICheck(ctx context.Context, project string) []check {
	list := check{Area: "BigQuery jobs API", Resource: "jobs.list " + project}
	jobs, err := d.api.Probe(ctx, project)
	list.Status, list.Detail, list.Fix = jobsAPIOutcome(err, "every user's jobs listed")
	get := check{Area: "BigQuery jobs API", Resource: "jobs.get " + project}
	k := events.JobKey{Project: project, JobID: "bqobserver_doctor_probe"}
	if len(jobs) > 0 && jobs[0].JobReference != nil {
		r := jobs[0].JobReference
		k = events.JobKey{Project: project, Location: r.Location, JobID: r.JobId}
	}
	_, err = d.api.Get(ctx, k)
	ok := "a job read"
	if errors.Is(err, jobsapi.ErrNotFound) {
		err, ok = nil, "allowed (no job to read: the answer was 404, not 403)"
	}
	get.Status, get.Detail, get.Fix = jobsAPIOutcome(err, ok)
	return []check{list, get}
}

func jobsAPIOutcome(err error, ok string) (string, string, string) {
	var denied *jobsapi.DeniedError
	switch {
	case err == nil:
		return statusOK, ok, ""
	case errors.As(err, &denied):
		return statusBroken, "missing " + denied.Permission + ": " + denied.Message, denied.Fix()
	case errors.Is(err, jobsapi.ErrNotFound):
		return statusBroken, err.Error(), "check the project id: the jobs API does not know it (or the project was deleted)"
	}
	return statusBroken, err.Error(), "check that the BigQuery API is enabled and reachable, and its quota"
}
