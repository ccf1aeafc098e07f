// Package pubsubtest connects tests to a Pub/Sub: the emulator named by
// PUBSUB_EMULATOR_HOST when it is set (CI sets it), the in-process pstest
// fake otherwise. Every client gets a project of its own, so tests sharing
// one emulator never see each other's topics.
package pubsubtest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bqobserver/bqobserver/internal/testutil/envtest"
)

// Server is a Pub/Sub for one test.
type Server struct {
	// Project is the test's own project id.
	Project string
	// Options connect any client (including Watermill's) to the server.
	Options []option.ClientOption
	// Client is a client on Project, closed with the test.
	Client *pubsub.Client
	// Emulator reports whether this is the real emulator rather than pstest.
	Emulator bool
	// Fake is the pstest server, nil on the emulator.
	Fake *pstest.Server
}

// New connects to the emulator or starts pstest, and closes everything
// when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{Project: Project(t)}
	if host := os.Getenv("PUBSUB_EMULATOR_HOST"); host != "" {
		s.Emulator = true
		s.Options = Options(host)
	} else {
		s.Fake = pstest.NewServer()
		t.Cleanup(func() { s.Fake.Close() })
		s.Options = Options(s.Fake.Addr)
	}
	s.Client = connect(t, s.Project, s.Options)
	return s
}

// Client returns a client on project of the unauthenticated server at
// addr (a pstest the test started), closed with the test.
func Client(t testing.TB, addr, project string) *pubsub.Client {
	t.Helper()
	return connect(t, project, Options(addr))
}

func connect(t testing.TB, project string, opts []option.ClientOption) *pubsub.Client {
	t.Helper()
	c, err := pubsub.NewClient(t.Context(), project, opts...)
	if err != nil {
		t.Fatalf("connecting to Pub/Sub: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// RequireEmulator returns the emulator's address, PUBSUB_EMULATOR_HOST;
// without it the test skips, or fails under envtest.RequireAll.
func RequireEmulator(t testing.TB) string {
	t.Helper()
	return envtest.Getenv(t, "PUBSUB_EMULATOR_HOST", "the Pub/Sub emulator")
}

// Options connect a client to an unauthenticated server at addr.
func Options(addr string) []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// Project returns a project id unique to this test run.
func Project(t testing.TB) string {
	b := make([]byte, 4)
	rand.Read(b)
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 16 {
		name = name[:16]
	}
	return "t-" + strings.Trim(name, "-") + "-" + hex.EncodeToString(b)
}
