package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// loadService is the bqobserver binary under measurement, run as a child
// process with its output in a log file.
type loadService struct {
	cmd  *exec.Cmd
	base string // http://host:port
	pid  int
	log  string
	done chan struct{}
}

// childEnv is the environment of the service and its setup in a load run:
// this process's, without any BQOBSERVER_ setting (the service runs with
// its defaults), PORT, or the Go runtime's settings (goRuntimeVars: the
// service runs with Go's defaults, as a deployment does), with the run's
// emulators. A BigQuery emulator of the caller's is left out too, so the
// service writes no BigQuery history and every run measures the same
// thing, whatever the shell it starts from. The emulators the command
// starts get the caller's environment (emulator.StartBigtable), GOGC and
// the rest included: --cbtemulator-gogc and its kin say so.
func childEnv(emu *loadEmulators) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "BQOBSERVER_"), name == "PORT", name == "PUBSUB_EMULATOR_HOST", name == "BIGTABLE_EMULATOR_HOST",
			name == "BIGQUERY_EMULATOR_HOST", name == "BIGQUERY_STORAGE_EMULATOR_HOST", slices.Contains(goRuntimeVars, name):
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PUBSUB_EMULATOR_HOST="+emu.pubsub, "BIGTABLE_EMULATOR_HOST="+emu.bigtable)
}

// goRuntimeVars are the variables that change how the Go runtime runs a
// program, which the load command withholds from the service.
var goRuntimeVars = []string{"GOGC", "GOMAXPROCS", "GOMEMLIMIT", "GODEBUG"}

// withheld is what of goRuntimeVars getenv sets, as NAME=value, for the
// report.
func withheld(getenv func(string) string) []string {
	var set []string
	for _, name := range goRuntimeVars {
		if v := getenv(name); v != "" {
			set = append(set, name+"="+v)
		}
	}
	return set
}

// setupProject creates the run's topics, subscriptions and table with the
// binary's own setup command, so that a backlog has a subscription to wait
// in before the service starts.
func setupProject(ctx context.Context, binary, project string, env []string) error {
	cmd := exec.CommandContext(ctx, binary, "setup", "--project", project)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bqobserver setup --project %s: %w: %s", project, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// startLoadService runs `binary run --project project --http-addr 127.0.0.1:0
// extra…`, its output in logDir/logName, and returns once it prints the
// address it serves on.
func startLoadService(ctx context.Context, binary, project, logDir, logName string, env, extra []string) (*loadService, error) {
	args := append([]string{"run", "--project", project, "--http-addr", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("starting the service: %w", err)
	}
	cmd.Stderr = cmd.Stdout
	s := &loadService{cmd: cmd, log: filepath.Join(logDir, logName), done: make(chan struct{})}
	logFile, err := os.Create(s.log)
	if err != nil {
		return nil, fmt.Errorf("starting the service: %w", err)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", binary, err)
	}
	s.pid = cmd.Process.Pid
	addr := make(chan string, 1)
	go s.copyOutput(out, logFile, addr)
	return s, s.waitAddress(ctx, addr)
}

// copyOutput writes the service's output to its log, passing on the
// address it announces (once), until the service exits. It reads lines of
// any length: a service whose output is not read blocks in its logger.
func (s *loadService) copyOutput(out io.Reader, logFile *os.File, addr chan<- string) {
	defer close(s.done)
	defer logFile.Close()
	br := bufio.NewReaderSize(out, 64<<10)
	long := false // the line read is the rest of one longer than the buffer
	for {
		line, err := br.ReadSlice('\n')
		_, _ = logFile.Write(line)
		if errors.Is(err, bufio.ErrBufferFull) {
			long = true
			continue
		}
		if a, ok := strings.CutPrefix(strings.TrimSpace(string(line)), "bqobserver is serving on "); ok && !long {
			select {
			case addr <- a:
			default:
			}
		}
		long = false
		if err != nil {
			break
		}
	}
	_ = s.cmd.Wait() // stop reports how it ended
}

func (s *loadService) waitAddress(ctx context.Context, addr <-chan string) error {
	select {
	case a := <-addr:
		s.base = a
		return nil
	case <-s.done:
		return fmt.Errorf("the service exited before serving; see %s", s.log)
	case <-time.After(time.Minute):
	case <-ctx.Done():
	}
	return errors.Join(fmt.Errorf("the service did not serve within a minute; see %s", s.log), s.stop())
}

// waitReady polls /readyz until it answers 200 and returns when it did.
func (s *loadService) waitReady(ctx context.Context, client *http.Client) (time.Time, error) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/readyz", nil)
		if err != nil {
			return time.Time{}, err
		}
		if res, err := client.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("waiting for the service to be ready: %w", ctx.Err())
		case <-s.done:
			return time.Time{}, fmt.Errorf("the service exited; see %s", s.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop ends the service with SIGTERM, as a platform would, and kills it if
// it has not exited 20 seconds later.
func (s *loadService) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM) // already gone is fine
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("the service did not stop within 20s of SIGTERM; killed; see %s", s.log)
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("the service exited with status %d; see %s", code, s.log)
	}
	return nil
}
