// Package logtest connects tests to a Bigtable that holds the event-log
// table: the emulator named by BIGTABLE_EMULATOR_HOST when it is set (CI sets
// it), the in-process bttest server otherwise. Every Bigtable gets a table of
// its own, created by schema.ApplyBigtable and deleted when the test ends, so
// tests sharing one emulator never see each other's rows.
package logtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigtable"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bqobserver/bqobserver/internal/bttest"
	"github.com/bqobserver/bqobserver/internal/testutil/envtest"
	"github.com/bqobserver/bqobserver/schema"
)

// The project and instance every test client uses; the emulator and bttest
// accept any.
const (
	Project  = "bqobserver-test"
	Instance = "test"
)

// Bigtable is a Bigtable for one test.
type Bigtable struct {
	// Client and Admin are connected to the server at Addr and closed with
	// the test.
	Client *bigtable.Client
	Admin  *bigtable.AdminClient
	// Table is the test's own table.
	Table string
	Addr  string
	// Emulator reports whether this is the real emulator rather than bttest.
	Emulator bool
}

// NewBigtable connects to the emulator when BIGTABLE_EMULATOR_HOST is set
// and to a new bttest server otherwise, and creates the test's table. dial
// options (for example interceptors that inject failures) apply to both
// clients.
func NewBigtable(t testing.TB, dial ...grpc.DialOption) *Bigtable {
	t.Helper()
	if os.Getenv("BIGTABLE_EMULATOR_HOST") != "" {
		return NewEmulator(t, dial...)
	}
	return NewBttest(t, dial...)
}

// NewBttest starts an in-process bttest server, whatever the environment,
// connects to it and creates the test's table.
func NewBttest(t testing.TB, dial ...grpc.DialOption) *Bigtable {
	t.Helper()
	return Open(t, StartBttest(t), dial...)
}

// NewEmulator connects to the emulator at BIGTABLE_EMULATOR_HOST and creates
// the test's table; see RequireEmulator for when the variable is not set.
func NewEmulator(t testing.TB, dial ...grpc.DialOption) *Bigtable {
	t.Helper()
	b := Open(t, RequireEmulator(t), dial...)
	b.Emulator = true
	return b
}

// RequireEmulator returns the emulator's address, BIGTABLE_EMULATOR_HOST;
// without it the test skips, or fails under envtest.RequireAll.
func RequireEmulator(t testing.TB) string {
	t.Helper()
	return envtest.Getenv(t, "BIGTABLE_EMULATOR_HOST", "the Bigtable emulator")
}

// StartBttest starts an in-process bttest server, stopped when the test ends,
// and returns its address. Without options it keeps gRPC's default limits
// (4 MiB per request), as an embedded server does.
func StartBttest(t testing.TB, opts ...grpc.ServerOption) string {
	t.Helper()
	srv, err := bttest.NewServer("127.0.0.1:0", opts...)
	if err != nil {
		t.Fatalf("starting bttest: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv.Addr
}

// Retention is the garbage-collection age of test tables. It is far longer
// than the product's default: test fixtures carry event times years in the
// past, and the emulator collects cells older than the retention within
// seconds, which would make rows vanish in the middle of a test.
const Retention = 100 * 365 * 24 * time.Hour

// Open connects to the server at addr and creates the test's table with
// schema.ApplyBigtable and Retention.
func Open(t testing.TB, addr string, dial ...grpc.DialOption) *Bigtable {
	t.Helper()
	b := Connect(t, addr, dial...)
	if err := schema.ApplyBigtable(t.Context(), b.Admin, b.Table, Retention); err != nil {
		t.Fatalf("creating table %s: %v", b.Table, err)
	}
	return b
}

// Connect connects to the server at addr and names a table for the test,
// which it deletes when the test ends, without creating it. The clients use
// connections of their own, so BIGTABLE_EMULATOR_HOST does not redirect
// them and dial options apply.
func Connect(t testing.TB, addr string, dial ...grpc.DialOption) *Bigtable {
	t.Helper()
	b := &Bigtable{Table: TableName(t), Addr: addr}
	ctx := t.Context()
	var err error
	b.Admin, err = bigtable.NewAdminClient(ctx, Project, Instance, option.WithGRPCConn(dialConn(t, addr, dial)))
	if err != nil {
		t.Fatalf("connecting the Bigtable admin client to %s: %v", addr, err)
	}
	t.Cleanup(func() { b.Admin.Close() })
	t.Cleanup(func() { dropTable(t, b.Admin, b.Table) })
	b.Client, err = bigtable.NewClientWithConfig(ctx, Project, Instance,
		bigtable.ClientConfig{MetricsProvider: bigtable.NoopMetricsProvider{}}, option.WithGRPCConn(dialConn(t, addr, dial)))
	if err != nil {
		t.Fatalf("connecting the Bigtable client to %s: %v", addr, err)
	}
	t.Cleanup(func() { b.Client.Close() })
	return b
}

func dialConn(t testing.TB, addr string, dial []grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1 << 28))}, dial...)
	conn, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		t.Fatalf("dialing Bigtable at %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dropTable deletes the test's table, if it was created, so that a shared
// emulator does not fill up.
func dropTable(t testing.TB, admin *bigtable.AdminClient, table string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := admin.TableInfo(ctx, table); err != nil {
		return
	}
	if err := admin.DeleteTable(ctx, table); err != nil {
		t.Logf("deleting table %s: %v", table, err)
	}
}

var unsafeChars = regexp.MustCompile(`[^-_.a-zA-Z0-9]+`)

// TableName returns a table id unique to this test run.
func TableName(t testing.TB) string {
	b := make([]byte, 4)
	rand.Read(b)
	name := strings.Trim(unsafeChars.ReplaceAllString(t.Name(), "-"), "-._")
	if len(name) > 32 {
		name = name[len(name)-32:]
	}
	return "t-" + name + "-" + hex.EncodeToString(b)
}
