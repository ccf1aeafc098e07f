package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/bqobserver/bqobserver/schema"
)

// SetupCmd creates or updates everything the service needs, idempotently.
type SetupCmd struct {
	PushURL            string `name:"push-url" help:"Public URL of the push intake (https://…/push/audit). Set it to create a push subscription as well."`
	PushSubscription   string `help:"Name of the push subscription created with --push-url." default:"bqobserver-push"`
	PushServiceAccount string `help:"Service account whose OIDC token Pub/Sub attaches to every push (recommended with --push-url)."`
}

// Run applies the Pub/Sub topology, the Bigtable schema and, when the
// history is written, the BigQuery history.
func (c *SetupCmd) Run(g *Globals, e *env) error {
	if pubSubMode(g, e.getenv) == modeEmbedded && bigtableMode(g, e.getenv) == modeEmbedded {
		return errors.New("nothing to set up: no backend is configured (--project and --bigtable-instance, or PUBSUB_EMULATOR_HOST and BIGTABLE_EMULATOR_HOST); the embedded mode sets up its in-process stand-ins at each start")
	}
	b, err := openBackends(e.ctx, g, e.getenv, e.log)
	if err != nil {
		return err
	}
	defer b.Close()
	top, err := withHistory(topology(g, b.PubSubProject), g, e.getenv)
	if err != nil {
		return err
	}
	if c.PushURL != "" {
		top.PushSubscription, top.PushEndpoint, top.PushServiceAccount = c.PushSubscription, c.PushURL, c.PushServiceAccount
	}
	if err := checkPushURL(c.PushURL, e.getenv("PUBSUB_EMULATOR_HOST") != ""); err != nil {
		return err
	}
	if g.AuditSubscription == "" && c.PushURL == "" {
		return errors.New("no ingest subscription (--audit-subscription is empty) and no --push-url: nothing would receive the audit entries")
	}
	if err := applySchema(e, g, b, top, g.Retention, true); err != nil {
		return err
	}
	// An in-process stand-in was set up too, and is gone when setup exits:
	// it is not reported as set up.
	var done []string
	if b.PubSubMode == modeEmbedded {
		fmt.Fprintln(e.stderr, "Pub/Sub not set up: none is configured (--project or PUBSUB_EMULATOR_HOST)")
	} else {
		done = append(done, fmt.Sprintf("topics %s, %s, %s; subscriptions %s",
			g.AuditTopic, g.EventsTopic, g.DeadLetterTopic, strings.Join(subscriptionsOf(top), ", ")))
	}
	if b.BigtableMode == modeEmbedded {
		fmt.Fprintln(e.stderr, "Bigtable not set up: none is configured (--bigtable-instance or BIGTABLE_EMULATOR_HOST)")
	} else {
		done = append(done, fmt.Sprintf("table %s (retention %v)", g.BigtableTable, g.Retention))
	}
	fmt.Fprintf(e.stdout, "set up %s\n", strings.Join(done, "; "))
	return setupHistory(e, g, top)
}

// subscriptionsOf names the subscriptions of top that setup makes.
func subscriptionsOf(top schema.PubSub) []string {
	var out []string
	for _, id := range []string{top.IngestSubscription, top.PushSubscription, top.DeadLetterSubscription, top.HistorySubscription} {
		if id != "" {
			out = append(out, id)
		}
	}
	return out
}

// checkPushURL refuses a push URL that is not the push intake's: Pub/Sub
// would push every entry where nothing takes it, and dead-letter it after
// days of retries. Pub/Sub pushes only to https; its emulator to http too.
func checkPushURL(raw string, emulator bool) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	scheme := err == nil && (u.Scheme == "https" || emulator && u.Scheme == "http")
	if !scheme || u.Host == "" || !strings.HasSuffix(u.Path, pushPath) {
		return fmt.Errorf("--push-url=%s is not the push intake's URL: want https://HOST%s (the service's address, with run --push-endpoint; http with the emulator)", raw, pushPath)
	}
	return nil
}
