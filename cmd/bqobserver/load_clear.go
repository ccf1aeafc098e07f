package main

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/bigtable"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/iterator"
)

// clear deletes the run's subscriptions, topics and table from the
// emulators once the run is over. The emulators keep everything in memory,
// the Pub/Sub emulator every message ever published, acknowledged ones
// included, until its topic and subscriptions go: without this, each run
// left the next one an emulator gigabytes larger (and slower), and a
// machine ran out of memory on the third run of a steady load. The
// service's replica subscriptions are the project's too, so everything
// the project has is deleted. What cannot be deleted is logged: the run's
// measurements stand.
func (r *loadRun) clear(ctx context.Context, ps *pubsub.Client) {
	var errs []error
	project := "projects/" + r.project
	nsubs := deleteAll(ps.SubscriptionAdminClient.ListSubscriptions(ctx, &pubsubpb.ListSubscriptionsRequest{Project: project}).Next,
		func(name string) error {
			return ps.SubscriptionAdminClient.DeleteSubscription(ctx, &pubsubpb.DeleteSubscriptionRequest{Subscription: name})
		}, &errs)
	ntopics := deleteAll(ps.TopicAdminClient.ListTopics(ctx, &pubsubpb.ListTopicsRequest{Project: project}).Next,
		func(name string) error {
			return ps.TopicAdminClient.DeleteTopic(ctx, &pubsubpb.DeleteTopicRequest{Topic: name})
		}, &errs)
	ntables := 0
	admin, err := bigtable.NewAdminClient(ctx, r.project, localInstance, localOptions(r.emu.bigtable)...)
	if err != nil {
		errs = append(errs, fmt.Errorf("connecting to the Bigtable emulator: %w", err))
	} else {
		defer admin.Close()
		tables, err := admin.Tables(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing the tables of %s: %w", r.project, err))
		}
		for _, t := range tables {
			if err := admin.DeleteTable(ctx, t); err != nil {
				errs = append(errs, fmt.Errorf("deleting table %s: %w", t, err))
				continue
			}
			ntables++
		}
	}
	if err := errors.Join(errs...); err != nil {
		r.env.log.Warn("load: could not delete all of the run's resources from the emulators; they keep using memory until the emulators stop",
			"project", r.project, "error", err.Error())
		return
	}
	r.env.log.Info("load: deleted the run's subscriptions, topics and tables from the emulators",
		"project", r.project, "subscriptions", nsubs, "topics", ntopics, "tables", ntables)
}

// deleteAll deletes, by name, every resource next lists, and returns how
// many it deleted; errors go to errs.
func deleteAll[T interface{ GetName() string }](next func() (T, error), del func(name string) error, errs *[]error) int {
	n := 0
	for {
		res, err := next()
		if errors.Is(err, iterator.Done) {
			return n
		}
		if err != nil {
			*errs = append(*errs, fmt.Errorf("listing: %w", err))
			return n
		}
		if err := del(res.GetName()); err != nil {
			*errs = append(*errs, fmt.Errorf("deleting %s: %w", res.GetName(), err))
			continue
		}
		n++
	}
}
