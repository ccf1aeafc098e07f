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
	subs := ps.SubscriptionAdminClient.ListSubscriptions(ctx, &pubsubpb.ListSubscriptionsRequest{Project: project})
	nsubs := 0
	for {
		s, err := subs.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("listing the subscriptions of %s: %w", r.project, err))
			break
		}
		if err := ps.SubscriptionAdminClient.DeleteSubscription(ctx, &pubsubpb.DeleteSubscriptionRequest{Subscription: s.Name}); err != nil {
			errs = append(errs, fmt.Errorf("deleting subscription %s: %w", s.Name, err))
			continue
		}
		nsubs++
	}
	topics := ps.TopicAdminClient.ListTopics(ctx, &pubsubpb.ListTopicsRequest{Project: project})
	ntopics := 0
	for {
		t, err := topics.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("listing the topics of %s: %w", r.project, err))
			break
		}
		if err := ps.TopicAdminClient.DeleteTopic(ctx, &pubsubpb.DeleteTopicRequest{Topic: t.Name}); err != nil {
			errs = append(errs, fmt.Errorf("deleting topic %s: %w", t.Name, err))
			continue
		}
		ntopics++
	}
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
