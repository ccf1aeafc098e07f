// Package bqtest connects tests to the BigQuery emulator
// (github.com/goccy/bigquery-emulator): its REST API at
// BIGQUERY_EMULATOR_HOST and its Storage Write API (gRPC) at
// BIGQUERY_STORAGE_EMULATOR_HOST, both set by .ci/run. Without them a test
// skips, or fails under BQOBSERVER_REQUIRE_ALL. Every test gets a dataset of
// its own in the emulator's one project, deleted when the test ends, so tests
// sharing an emulator never see each other's tables.
package bqtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bqobserver/bqobserver/internal/testutil/envtest"
)

// Project is the emulator's project: .ci/run starts it with --project
// bqobserver-local, the project the embedded mode uses. The emulator knows
// no other.
const Project = "bqobserver-local"

// BigQuery is the emulator for one test.
type BigQuery struct {
	// Client (REST) and Write (Storage Write API) are connected to the
	// emulator and closed with the test.
	Client *bigquery.Client
	Write  *managedwriter.Client
	// Dataset is the test's own dataset id, not created yet.
	Dataset string
	// REST and GRPC are the emulator's addresses.
	REST, GRPC string
}

// RequireEmulator returns the emulator's REST and gRPC addresses; without
// them the test skips, or fails under envtest.RequireAll.
func RequireEmulator(t testing.TB) (rest, grpc string) {
	t.Helper()
	return envtest.Getenv(t, "BIGQUERY_EMULATOR_HOST", "the BigQuery emulator's REST API"),
		envtest.Getenv(t, "BIGQUERY_STORAGE_EMULATOR_HOST", "the BigQuery emulator's Storage Write API")
}

// New connects to the emulator and names a dataset for the test, deleted
// with its contents when the test ends.
func New(t testing.TB) *BigQuery {
	t.Helper()
	b := &BigQuery{Dataset: Dataset(t)}
	b.REST, b.GRPC = RequireEmulator(t)
	b.Client = Client(t, b.REST)
	b.Write = WriteClient(t, b.GRPC)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b.Client.DatasetInProject(Project, b.Dataset).DeleteWithContents(ctx)
	})
	return b
}

// Client returns a REST client of the emulator at addr, closed with the test.
func Client(t testing.TB, addr string) *bigquery.Client {
	t.Helper()
	c, err := bigquery.NewClient(t.Context(), Project, Options(addr)...)
	if err != nil {
		t.Fatalf("connecting to the BigQuery emulator at %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// WriteClient returns a Storage Write API client of the emulator at addr,
// closed with the test.
func WriteClient(t testing.TB, addr string) *managedwriter.Client {
	t.Helper()
	c, err := managedwriter.NewClient(context.Background(), Project, WriteOptions(addr)...)
	if err != nil {
		t.Fatalf("connecting to the BigQuery emulator's Storage Write API at %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Options connect a REST client to an emulator at addr (host:port). The
// client tries a request again when the emulator answers that its database
// is locked: the emulator keeps everything in one SQLite database, which a
// write elsewhere (another test package's, or a sink's) holds for a moment.
func Options(addr string) []option.ClientOption {
	return []option.ClientOption{option.WithEndpoint("http://" + addr),
		option.WithHTTPClient(&http.Client{Transport: lockRetry{http.DefaultTransport}})}
}

// lockRetry sends a request again, a few times with a pause, while the
// emulator answers that its database is locked.
type lockRetry struct{ next http.RoundTripper }

func (l lockRetry) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return nil, err
		}
		r.Body.Close()
	}
	for attempt := 1; ; attempt++ {
		req := r.Clone(r.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
		resp, err := l.next.RoundTrip(req)
		if err != nil || resp.StatusCode < 400 || attempt == 20 {
			return resp, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		if !bytes.Contains(b, []byte("database is locked")) {
			return resp, nil
		}
		select {
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
}

// WriteOptions connect a Storage Write API client to an emulator at addr.
// They turn on multiplexing: on a connection of its own, the client names
// the stream only in its first request, and the emulator sends the others
// to whichever stream it knows first, another test's table as likely as
// not; a multiplexing client names the stream in every request.
func WriteOptions(addr string) []option.ClientOption {
	return []option.ClientOption{
		managedwriter.WithMultiplexing(),
		option.WithEndpoint(addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// Dataset returns a dataset id unique to this test run.
func Dataset(t testing.TB) string {
	b := make([]byte, 4)
	rand.Read(b)
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(t.Name()))
	if len(name) > 24 {
		name = name[:24]
	}
	return "t_" + strings.Trim(name, "_") + "_" + hex.EncodeToString(b)
}
