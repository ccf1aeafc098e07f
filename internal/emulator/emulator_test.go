package emulator

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/bqobserver/bqobserver/internal/testutil/envtest"
)

// TestStartAndStop starts both emulators of the SDK, checks that they
// listen, and stops them: their ports close.
func TestStartAndStop(t *testing.T) {
	sdk := envtest.Getenv(t, "BQOBSERVER_GCLOUD_SDK", "the gcloud SDK's emulators")
	for name, start := range map[string]func(context.Context, string, string) (*Process, error){
		"pubsub": StartPubSub, "bigtable": StartBigtable,
	} {
		t.Run(name, func(t *testing.T) {
			p, err := start(t.Context(), sdk, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != name || p.PID <= 0 {
				t.Errorf("process %+v; want name %s and a pid", p, name)
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
	if _, err := StartBigtable(t.Context(), t.TempDir(), t.TempDir()); err == nil {
		t.Error("StartBigtable in an empty SDK succeeded")
	}
}
