package logtest

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Cbtemulator is a Bigtable emulator process of the test's own, on a free
// loopback port, which the test can stop and start again (empty) on the
// same port. The test's cleanup stops it.
type Cbtemulator struct {
	bin  string
	Addr string // host:port
	cmd  *exec.Cmd
}

// StartCbtemulator starts the cbtemulator binary bin on a free loopback
// port and waits until it listens.
func StartCbtemulator(t testing.TB, bin string) *Cbtemulator {
	t.Helper()
	e := &Cbtemulator{bin: bin, Addr: net.JoinHostPort("127.0.0.1", freePort(t))}
	e.Start(t)
	t.Cleanup(e.Stop)
	return e
}

// Start starts the emulator again, empty, on its address, and waits up to
// 20 s until it listens.
func (e *Cbtemulator) Start(t testing.TB) {
	t.Helper()
	host, port, _ := net.SplitHostPort(e.Addr)
	e.cmd = exec.Command(e.bin, "-host", host, "-port", port)
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", e.bin, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		if c, err := net.Dial("tcp", e.Addr); err == nil {
			c.Close()
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("cbtemulator did not listen on %s within 20s", e.Addr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop kills the emulator, which forgets everything; stopping a stopped
// emulator does nothing.
func (e *Cbtemulator) Stop() {
	if e.cmd != nil && e.cmd.Process != nil {
		e.cmd.Process.Kill()
		e.cmd.Wait()
		e.cmd = nil
	}
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
