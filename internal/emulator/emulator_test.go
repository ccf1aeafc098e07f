package emulator

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/internal/testutil/envtest"
)

// TestStartAndStop starts both emulators of the SDK, checks that they
// listen, and stops them: their ports close.
func TestStartAndStop(t *testing.T) {
	sdk := envtest.Getenv(t, "BQOBSERVER_GCLOUD_SDK", "the gcloud SDK's emulators")
	for name, start := range map[string]func(context.Context, string, string) (*Process, error){
		"pubsub": func(ctx context.Context, sdk, dir string) (*Process, error) {
			return StartPubSub(ctx, sdk, dir, "-Xmx512m")
		},
		"bigtable": func(ctx context.Context, sdk, dir string) (*Process, error) {
			return StartBigtable(ctx, sdk, dir, GoRuntime{GOGC: 150, GOMAXPROCS: 1, GOMEMLIMIT: "6GiB"})
		},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := start(t.Context(), sdk, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != name || p.PID <= 0 {
				t.Errorf("process %+v; want name %s and a pid", p, name)
			}
			// The runtime settings reach the emulator, and its collector's log is readable.
			file, want := "cmdline", []string{"-Xmx512m", "-Xlog:gc:file=" + p.GCLog + ":utctime"}
			if name == "bigtable" {
				file, want = "environ", []string{"GOGC=150", "GOMAXPROCS=1", "GOMEMLIMIT=6GiB", "GODEBUG=gctrace=1"}
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", p.PID, file))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range want {
				if !slices.Contains(strings.Split(string(b), "\x00"), w) {
					t.Errorf("the %s emulator's %s lacks %q: %q", name, file, w, b)
				}
			}
			if _, err := p.GC(); err != nil {
				t.Errorf("GC: %v", err)
			}
			stop, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := p.Stop(stop); err != nil {
				t.Errorf("Stop: %v", err)
			}
			if c, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
				c.Close()
				t.Errorf("%s still accepts connections after Stop", p.Addr)
			}
			if err := p.Stop(stop); err != nil {
				t.Errorf("second Stop: %v", err)
			}
		})
	}
}

// TestStartMissing fails at once, naming the emulator, when the SDK has
// none.
func TestStartMissing(t *testing.T) {
	if _, err := StartBigtable(t.Context(), t.TempDir(), t.TempDir(), GoRuntime{}); err == nil {
		t.Error("StartBigtable in an empty SDK succeeded")
	}
}
