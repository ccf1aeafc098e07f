// Package emulator starts the Pub/Sub emulator and the Bigtable emulator
// (cbtemulator) of the gcloud SDK on free loopback ports, each in a process
// group of its own, for tools that want a fresh pair (the load command).
// Tests use the emulators CI starts instead (PUBSUB_EMULATOR_HOST,
// BIGTABLE_EMULATOR_HOST).
package emulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SDKRoot asks gcloud where the SDK is installed.
func SDKRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "gcloud", "info", "--format=value(installation.sdk_root)").Output()
	if err != nil {
		return "", fmt.Errorf("finding the gcloud SDK (gcloud info): %w", err)
	}
	root := strings.TrimSpace(string(out))
	if root == "" {
		return "", errors.New("finding the gcloud SDK: gcloud info named no installation root")
	}
	return root, nil
}

// Process is a running emulator.
type Process struct {
	// Name is "pubsub" or "bigtable".
	Name string
	// Addr is host:port, the value of PUBSUB_EMULATOR_HOST or
	// BIGTABLE_EMULATOR_HOST.
	Addr string
	// PID is the emulator's process (the JVM for Pub/Sub: its script
	// execs it).
	PID int
	// Log is the file its output goes to.
	Log string
	// GCLog is the file its garbage collector logs each collection to
	// (see GC); Started is when it was started, which cbtemulator's
	// collection times count from.
	GCLog   string
	Started time.Time

	cmd  *exec.Cmd
	done chan struct{}
}

// StartPubSub starts the SDK's Pub/Sub emulator, writing its output to a
// file in logDir, and returns once it accepts connections. jvmOptions are
// added to its JVM's options (after any CLOUD_PUBSUB_EMULATOR_OPTS holds),
// and the JVM logs every collection's pauses to GCLog (unified logging,
// with UTC times).
func StartPubSub(ctx context.Context, sdkRoot, logDir, jvmOptions string) (*Process, error) {
	bin := filepath.Join(sdkRoot, "platform", "pubsub-emulator", "bin", "cloud-pubsub-emulator")
	gcLog := filepath.Join(logDir, "pubsub-gc.log")
	opts := strings.TrimSpace(os.Getenv("CLOUD_PUBSUB_EMULATOR_OPTS") + " " + jvmOptions + " -Xlog:gc:file=" + gcLog + ":utctime")
	return start(ctx, "pubsub", logDir, gcLog, 90*time.Second, []string{"CLOUD_PUBSUB_EMULATOR_OPTS=" + opts},
		func(port string) []string {
			return []string{bin, "--host=127.0.0.1", "--port=" + port}
		})
}

// GoRuntime sets a Go emulator's runtime: zero fields leave Go's
// defaults (or the environment's GOGC, GOMAXPROCS and GOMEMLIMIT). A
// negative GOGC turns the proportional pacing off, which with a GOMEMLIMIT
// leaves collections to when the heap nears the limit.
type GoRuntime struct {
	GOGC       int
	GOMAXPROCS int
	GOMEMLIMIT string // as the Go runtime reads it: 8GiB, 512MiB
}

// StartBigtable starts the SDK's cbtemulator, as StartPubSub does, with
// its Go runtime set as rt says. The runtime traces every collection
// (GODEBUG gctrace=1) into its log, which is its GCLog.
func StartBigtable(ctx context.Context, sdkRoot, logDir string, rt GoRuntime) (*Process, error) {
	bin := filepath.Join(sdkRoot, "platform", "bigtable-emulator", "cbtemulator")
	debug := "gctrace=1"
	if d := os.Getenv("GODEBUG"); d != "" {
		debug = d + "," + debug
	}
	env := []string{"GODEBUG=" + debug}
	if rt.GOGC != 0 {
		env = append(env, "GOGC="+strconv.Itoa(rt.GOGC))
	}
	if rt.GOMAXPROCS != 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(rt.GOMAXPROCS))
	}
	if rt.GOMEMLIMIT != "" {
		env = append(env, "GOMEMLIMIT="+rt.GOMEMLIMIT)
	}
	return start(ctx, "bigtable", logDir, "", 30*time.Second, env, func(port string) []string {
		return []string{bin, "-host", "127.0.0.1", "-port", port}
	})
}

// start runs the emulator argv names with the environment and env, and
// waits until it listens; its GC log is gcLog, or its own log for "".
func start(ctx context.Context, name, logDir, gcLog string, within time.Duration, env []string, argv func(port string) []string) (*Process, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("starting the %s emulator: %w", name, err)
	}
	logPath := filepath.Join(logDir, name+"-emulator.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("starting the %s emulator: %w", name, err)
	}
	defer logFile.Close() // the child holds its own descriptor
	args := argv(port)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if gcLog == "" {
		gcLog = logPath
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the %s emulator: %w", name, err)
	}
	p := &Process{Name: name, Addr: net.JoinHostPort("127.0.0.1", port), PID: cmd.Process.Pid, Log: logPath,
		GCLog: gcLog, Started: started, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }() // Stop reports how it ended
	if err := p.waitListening(ctx, within); err != nil {
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return nil, errors.Join(err, p.Stop(stop))
	}
	return p, nil
}

// freePort finds a loopback port that nothing listens on now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}

// waitListening waits until the emulator accepts connections, it exits, or
// the wait is over.
func (p *Process) waitListening(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		if c, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("the %s emulator exited at start: %s", p.Name, p.tail())
		case <-ctx.Done():
			return fmt.Errorf("the %s emulator did not listen on %s within %s: %s", p.Name, p.Addr, within, p.tail())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// tail is the end of the emulator's log, for errors.
func (p *Process) tail() string {
	b, _ := os.ReadFile(p.Log) // the log is only a hint
	if i := len(b) - 600; i > 0 {
		b = b[i:]
	}
	return string(bytes.TrimSpace(b))
}

// Stop ends the emulator's process group with SIGTERM, and SIGKILL if it
// has not exited when ctx ends. It is safe to call more than once.
func (p *Process) Stop(ctx context.Context) error {
	_ = syscall.Kill(-p.PID, syscall.SIGTERM) // already gone is fine
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		_ = syscall.Kill(-p.PID, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("stopping the %s emulator: killed after %w", p.Name, ctx.Err())
	}
}
