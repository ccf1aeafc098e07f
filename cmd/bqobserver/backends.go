package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"cloud.google.com/go/bigtable"
	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bqobserver/bqobserver/events/bus"
	"github.com/bqobserver/bqobserver/internal/bttest"
	"github.com/bqobserver/bqobserver/internal/pstest"
)

// Where each backend lives. The choice is made per backend, so that for
// example the Pub/Sub emulator can be used with an in-process Bigtable.
const (
	modeEmbedded = "embedded" // in-process pstest or bttest
	modeEmulator = "emulator" // PUBSUB_EMULATOR_HOST or BIGTABLE_EMULATOR_HOST
	modeCloud    = "cloud"    // Google Cloud
)

// backends holds the clients of one run; only their construction differs
// between the embedded, emulator and Google Cloud modes.
type backends struct {
	PubSubMode, BigtableMode string
	PubSubProject            string
	// PubSubOptions are the client options for every Pub/Sub client the
	// process makes (Watermill makes its own).
	PubSubOptions []option.ClientOption
	PubSub        *pubsub.Client
	Bigtable      *bigtable.Client
	BigtableAdmin *bigtable.AdminClient

	closers []func() error
}

// openBackends connects to Pub/Sub and Bigtable as g configures, starting
// in-process stand-ins for whatever is neither emulated nor configured.
func openBackends(ctx context.Context, g *Globals, env func(string) string, log *slog.Logger) (_ *backends, err error) {
	b := &backends{}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.Close())
		}
	}()
	if err := checkBackendMix(pubSubMode(g, env), bigtableMode(g, env), log); err != nil {
		return nil, err
	}
	if err := b.openPubSub(ctx, g, env); err != nil {
		return nil, err
	}
	if err := b.openBigtable(ctx, g, env); err != nil {
		return nil, err
	}
	log.Info("backends ready", "pubsub", b.PubSubMode, "pubsub_project", b.PubSubProject,
		"bigtable", b.BigtableMode, "bigtable_instance", g.BigtableInstance)
	return b, nil
}

// pubSubMode is where g and the environment put Pub/Sub.
func pubSubMode(g *Globals, env func(string) string) string {
	switch {
	case env("PUBSUB_EMULATOR_HOST") != "":
		return modeEmulator // the client library reads it itself
	case g.Project != "":
		return modeCloud
	}
	return modeEmbedded
}

// bigtableMode is where g and the environment put Bigtable.
func bigtableMode(g *Globals, env func(string) string) string {
	switch {
	case env("BIGTABLE_EMULATOR_HOST") != "":
		return modeEmulator
	case g.BigtableInstance != "":
		return modeCloud
	}
	return modeEmbedded
}

// checkBackendMix refuses Google Cloud for one backend and an in-process
// stand-in for the other: a deployment that forgot --bigtable-instance
// would keep its event log in memory and lose it at every restart, one
// that forgot --project would never hear of a job. With an emulator, the
// mix is a development setup (the tests use it): it is allowed, with a
// warning that the in-process part ends with the process.
func checkBackendMix(pubsubMode, btMode string, log *slog.Logger) error {
	switch {
	case pubsubMode == modeCloud && btMode == modeEmbedded:
		return errors.New("Pub/Sub is Google Cloud's (--project) but no Bigtable is configured: the event log would be in this process's memory and lost at every restart; " +
			"set --bigtable-instance (BQOBSERVER_BIGTABLE_INSTANCE) or BIGTABLE_EMULATOR_HOST")
	case btMode == modeCloud && pubsubMode == modeEmbedded:
		return errors.New("Bigtable is Google Cloud's (--bigtable-instance) but no Pub/Sub is configured: no audit entry would ever arrive; " +
			"set --project (BQOBSERVER_PROJECT) or PUBSUB_EMULATOR_HOST")
	case pubsubMode == modeEmbedded && btMode != modeEmbedded:
		log.Warn("Pub/Sub is in-process (neither --project nor PUBSUB_EMULATOR_HOST is set): its topics and subscriptions end with this process", "bigtable", btMode)
	case btMode == modeEmbedded && pubsubMode != modeEmbedded:
		log.Warn("Bigtable is in-process (neither --bigtable-instance nor BIGTABLE_EMULATOR_HOST is set): the event log ends with this process", "pubsub", pubsubMode)
	}
	return nil
}

func (b *backends) openPubSub(ctx context.Context, g *Globals, env func(string) string) error {
	b.PubSubProject = g.Project
	b.PubSubMode = pubSubMode(g, env)
	if b.PubSubMode == modeEmbedded {
		srv := pstest.NewServer()
		b.closers = append(b.closers, srv.Close)
		b.PubSubOptions = localOptions(srv.Addr)
	}
	if b.PubSubProject == "" {
		b.PubSubProject = localProject
	}
	c, err := pubsub.NewClientWithConfig(ctx, b.PubSubProject, bus.ClientConfig(), b.PubSubOptions...)
	if err != nil {
		return fmt.Errorf("connecting to Pub/Sub (%s): %w", b.PubSubMode, err)
	}
	b.PubSub = c
	b.closers = append(b.closers, c.Close)
	return nil
}

func (b *backends) openBigtable(ctx context.Context, g *Globals, env func(string) string) error {
	project := cmp.Or(g.BigtableProject, g.Project, localProject)
	instance := cmp.Or(g.BigtableInstance, localInstance)
	var opts []option.ClientOption
	b.BigtableMode = bigtableMode(g, env)
	if b.BigtableMode == modeEmbedded {
		// Bigtable accepts requests of up to 256 MiB; so must the stand-in.
		srv, err := bttest.NewServer("127.0.0.1:0", grpc.MaxRecvMsgSize(256<<20))
		if err != nil {
			return fmt.Errorf("starting the in-process Bigtable: %w", err)
		}
		b.closers = append(b.closers, func() error { srv.Close(); return nil })
		opts = localOptions(srv.Addr)
	}
	var cfg bigtable.ClientConfig
	if b.BigtableMode != modeCloud {
		// Built-in client metrics go to Cloud Monitoring, which a local
		// Bigtable has not.
		cfg.MetricsProvider = bigtable.NoopMetricsProvider{}
	}
	c, err := bigtable.NewClientWithConfig(ctx, project, instance, cfg, opts...)
	if err != nil {
		return fmt.Errorf("connecting to Bigtable (%s): %w", b.BigtableMode, err)
	}
	b.Bigtable = c
	b.closers = append(b.closers, c.Close)
	a, err := bigtable.NewAdminClient(ctx, project, instance, opts...)
	if err != nil {
		return fmt.Errorf("connecting to the Bigtable admin API (%s): %w", b.BigtableMode, err)
	}
	b.BigtableAdmin = a
	b.closers = append(b.closers, a.Close)
	return nil
}

// localOptions connect a client to an in-process server on addr.
func localOptions(addr string) []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// Close closes every client and in-process server, newest first.
func (b *backends) Close() error { return closeNewestFirst(&b.closers) }

// closeNewestFirst calls the closers, the last added first, forgets them,
// and joins their errors.
func closeNewestFirst(closers *[]func() error) error {
	var errs []error
	for i := len(*closers) - 1; i >= 0; i-- {
		errs = append(errs, (*closers)[i]())
	}
	*closers = nil
	return errors.Join(errs...)
}
