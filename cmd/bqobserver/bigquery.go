package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"github.com/cenkalti/backoff/v5"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bqobserver/bqobserver/schema"
)

// HistoryFlags configure the job history in BigQuery. They are global:
// setup creates the history, run writes it, and the history and report-url
// commands read it.
type HistoryFlags struct {
	BigQueryProject             string        `name:"bigquery-project" help:"Google Cloud project of the BigQuery job history (default: --project; the embedded project with the emulator)."`
	BigQueryDataset             string        `name:"bigquery-dataset" help:"BigQuery dataset of the job history." default:"bqobserver"`
	BigQueryLocation            string        `name:"bigquery-location" help:"Location of the BigQuery dataset, when setup creates it." default:"US"`
	BigQueryPartitionExpiration time.Duration `name:"bigquery-partition-expiration" help:"Delete a day of job_versions this long after the day (applied by setup and --auto-create); 0 keeps the history for ever." default:"0s"`
	History                     *bool         `name:"history" negatable:"" help:"Write the job history to BigQuery (default: whenever a BigQuery backend is configured: BIGQUERY_EMULATOR_HOST, --bigquery-project, or --project without PUBSUB_EMULATOR_HOST)."`
	HistorySubscription         string        `name:"history-subscription" help:"Pull subscription of the history sink's consumer group on the events topic." default:"bqobserver-history"`
	LookerStudioTemplate        string        `name:"looker-studio-template" help:"Id of the Looker Studio report (built as docs/LOOKER.md says) that the history report link copies; empty: a new report with the history's two data sources."`
}

// BigQuery backends, as the other backends' modes.
const modeNone = "none" // no BigQuery: the history is served from the log only

// bigQueryBackend is the BigQuery of the job history: where it is and the
// clients that reach it.
type bigQueryBackend struct {
	Mode     string
	Schema   schema.BigQuery
	Client   *bigquery.Client
	Write    *managedwriter.Client // nil without a Storage Write API
	closers  []func() error
	emulator string // BIGQUERY_EMULATOR_HOST, in the emulator mode
}

// bigQueryMode says where the history lives: the emulator when
// BIGQUERY_EMULATOR_HOST is set, Google Cloud when --bigquery-project is
// set, or --project is and Pub/Sub is Google Cloud's too (not
// PUBSUB_EMULATOR_HOST), nowhere otherwise.
func bigQueryMode(g *Globals, env func(string) string) string {
	switch {
	case env("BIGQUERY_EMULATOR_HOST") != "":
		return modeEmulator
	case g.BigQueryProject != "" || g.Project != "" && env("PUBSUB_EMULATOR_HOST") == "":
		return modeCloud
	}
	return modeNone
}

// historyOn reports whether the history is written: as --[no-]history
// says, or else whenever a BigQuery backend is configured.
func historyOn(g *Globals, env func(string) string) (bool, error) {
	mode := bigQueryMode(g, env)
	if g.History == nil {
		return mode != modeNone, nil
	}
	if *g.History && mode == modeNone {
		return false, errors.New("--history needs a BigQuery backend: set BIGQUERY_EMULATOR_HOST and BIGQUERY_STORAGE_EMULATOR_HOST, --bigquery-project or --project")
	}
	return *g.History, nil
}

// historySchema is where the flags put the history.
func historySchema(g *Globals) schema.BigQuery {
	return schema.BigQuery{
		Project:             cmp.Or(g.BigQueryProject, g.Project, localProject),
		Dataset:             g.BigQueryDataset,
		Location:            g.BigQueryLocation,
		PartitionExpiration: g.BigQueryPartitionExpiration,
	}
}

// openBigQuery connects to the history's BigQuery, with a Storage Write API
// client when write is set. Against the emulator the REST API is at
// BIGQUERY_EMULATOR_HOST and the Storage Write API at
// BIGQUERY_STORAGE_EMULATOR_HOST; against Google Cloud the clients use the
// application's default credentials.
func openBigQuery(ctx context.Context, g *Globals, env func(string) string, write bool, log *slog.Logger) (*bigQueryBackend, error) {
	b := &bigQueryBackend{Mode: bigQueryMode(g, env), Schema: historySchema(g), emulator: env("BIGQUERY_EMULATOR_HOST")}
	if b.Mode == modeNone {
		return nil, errors.New("no BigQuery backend: set BIGQUERY_EMULATOR_HOST and BIGQUERY_STORAGE_EMULATOR_HOST, --bigquery-project or --project")
	}
	if err := b.Schema.Validate(); err != nil {
		return nil, err
	}
	if err := b.connect(ctx, env, write); err != nil {
		return nil, errors.Join(err, b.Close())
	}
	log.Info("BigQuery ready", "bigquery", b.Mode, "project", b.Schema.Project, "dataset", b.Schema.Dataset)
	return b, nil
}

// connect makes the clients; Close closes those it made.
func (b *bigQueryBackend) connect(ctx context.Context, env func(string) string, write bool) error {
	rest, grpcOpts, err := b.options(env, write)
	if err != nil {
		return err
	}
	if b.Client, err = bigquery.NewClient(ctx, b.Schema.Project, rest...); err != nil {
		return fmt.Errorf("connecting to BigQuery (%s): %w", b.Mode, err)
	}
	b.closers = append(b.closers, b.Client.Close)
	if write {
		// The Storage Write API client keeps its connections on the context
		// it is made with: the process's, not a request's.
		if b.Write, err = managedwriter.NewClient(context.WithoutCancel(ctx), b.Schema.Project, grpcOpts...); err != nil {
			return fmt.Errorf("connecting to BigQuery's Storage Write API (%s): %w", b.Mode, err)
		}
		b.closers = append(b.closers, b.Write.Close)
	}
	return nil
}

// options are the client options of the mode: none for Google Cloud, the
// emulator's addresses otherwise.
func (b *bigQueryBackend) options(env func(string) string, write bool) (rest, grpcOpts []option.ClientOption, err error) {
	if b.Mode != modeEmulator {
		return nil, nil, nil
	}
	rest = []option.ClientOption{option.WithEndpoint("http://" + b.emulator), option.WithoutAuthentication()}
	storage := env("BIGQUERY_STORAGE_EMULATOR_HOST")
	if write && storage == "" {
		return nil, nil, errors.New("BIGQUERY_EMULATOR_HOST is set but BIGQUERY_STORAGE_EMULATOR_HOST is not: the history is written through the emulator's Storage Write API (its --grpc-port)")
	}
	grpcOpts = []option.ClientOption{
		option.WithEndpoint(storage),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		// The emulator sends a request that does not name its stream to
		// whichever stream it knows first; a multiplexing client names the
		// stream in every request.
		managedwriter.WithMultiplexing(),
	}
	return rest, grpcOpts, nil
}

// Close closes the clients, newest first.
func (b *bigQueryBackend) Close() error { return closeNewestFirst(&b.closers) }

// apply creates or updates the history's dataset, table and views, trying
// again with backoff for a minute while BigQuery fails transiently.
func (b *bigQueryBackend) apply(ctx context.Context, log *slog.Logger) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := schema.ApplyBigQuery(ctx, b.Client, b.Schema)
		if err != nil && !schema.Transient(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithMaxElapsedTime(time.Minute), backoff.WithNotify(func(err error, wait time.Duration) {
		log.Warn("setting up BigQuery failed; trying again", "error", err.Error(), "in", wait.String())
	}))
	if err != nil {
		return fmt.Errorf("setting up BigQuery: %w", err)
	}
	log.Info("BigQuery history applied", "project", b.Schema.Project, "dataset", b.Schema.Dataset,
		"location", b.Schema.Location, "partition_expiration", b.Schema.PartitionExpiration.String())
	return nil
}
