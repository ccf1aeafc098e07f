package main

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bqobserver/bqobserver/schema"
)

// topology is the Pub/Sub topology the flags name, in project.
func topology(g *Globals, project string) schema.PubSub {
	return schema.PubSub{
		Project:                project,
		AuditTopic:             g.AuditTopic,
		EventsTopic:            g.EventsTopic,
		DeadLetterTopic:        g.DeadLetterTopic,
		IngestSubscription:     g.AuditSubscription,
		DeadLetterSubscription: g.DeadLetterSubscription,
	}
}

// topology is the Pub/Sub topology of the run: the flags' in the
// project of its Pub/Sub, with the history sink's subscription when the
// history is written, and without the ingest subscription when the run
// does not pull (push-only): it neither needs it nor creates it again.
func (c *RunCmd) topology(g *Globals, e *env, b *backends) (schema.PubSub, error) {
	top, err := withHistory(topology(g, b.PubSubProject), g, e.getenv)
	if !c.Pull {
		top.IngestSubscription = ""
	}
	return top, err
}

// schemaTimeout bounds applySchema: a few dozen admin calls, each done in
// well under a second, and a backend that does not answer fails the
// start (or setup) with an error instead of holding it for ever.
var schemaTimeout = 2 * time.Minute

// applySchema creates or updates the topics, subscriptions and the event
// log's table, which keeps events for retention, within schemaTimeout. It
// needs admin rights; the service at run time does not. Unless shorten
// (setup), a table that keeps events longer keeps doing so, with a
// warning: a service that starts with --auto-create and the default
// --retention must not have Bigtable collect, for good, what an operator
// chose to keep.
func applySchema(e *env, g *Globals, b *backends, top schema.PubSub, retention time.Duration, shorten bool) error {
	ctx, cancel := context.WithTimeout(e.ctx, schemaTimeout)
	defer cancel()
	// The two backends at once: each is a chain of admin calls that wait
	// on the network, and the service's start waits for both. The first
	// failure ends the other.
	grp, ctx := errgroup.WithContext(ctx)
	grp.Go(func() error {
		if err := schema.ApplyPubSub(ctx, b.PubSub, top); err != nil {
			return fmt.Errorf("setting up Pub/Sub: %w", err)
		}
		return nil
	})
	asked := retention
	grp.Go(func() error {
		var err error
		if shorten {
			err = schema.ApplyBigtable(ctx, b.BigtableAdmin, g.BigtableTable, retention)
		} else {
			retention, err = schema.ApplyBigtableKeepingLonger(ctx, b.BigtableAdmin, g.BigtableTable, retention)
		}
		if err != nil {
			return fmt.Errorf("setting up Bigtable: %w", err)
		}
		return nil
	})
	if err := grp.Wait(); err != nil {
		return err
	}
	if retention != asked {
		e.log.Warn("the event log keeps events longer than --retention says, and keeps doing so: only bqobserver setup shortens a table's retention",
			"table", g.BigtableTable, "retention", retention.String(), "asked", asked.String())
	}
	e.log.Info("schema applied", "project", top.Project, "table", g.BigtableTable, "retention", retention.String())
	return nil
}
