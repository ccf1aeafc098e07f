// Command bqobserver keeps one live list of every BigQuery job running in a
// Google Cloud organization, and a complete history of every job, built from
// the organization's BigQuery audit logs.
//
// Run with no arguments it starts the whole system in-process (an embedded
// Pub/Sub and Bigtable, and a simulated organization) and serves the UI on
// http://127.0.0.1:8080. See README.md for the other modes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// env is what a subcommand may use of the process: its context (cancelled on
// SIGINT or SIGTERM), logger and standard streams.
type env struct {
	ctx    context.Context
	log    *slog.Logger
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// errExit carries a non-zero exit status that has already been explained.
var errExit = errors.New("exit status 1")

// logWriter sends the logs of the long-running commands to standard output,
// where Cloud Run and GKE collect structured logs, and those of the tools
// (decode, publish, simulate), whose standard output is their data, to
// standard error.
func logWriter(command string, stdout, stderr io.Writer) io.Writer {
	switch strings.Fields(command + " run")[0] {
	case "run", "setup":
		return stdout
	}
	return stderr
}

// run runs the command line args until it is done or the process gets
// SIGINT or SIGTERM, and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runContext(ctx, args, stdin, stdout, stderr, getenv)
}

// runContext runs the command line args until it is done or ctx ends.
func runContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	var cli CLI
	exited := -1
	parser, err := kong.New(&cli,
		kong.Name("bqobserver"),
		kong.Description("A live list of every running BigQuery job in an organization, and the history of every job."),
		kong.DefaultEnvars("BQOBSERVER"),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exited = code }),
	)
	if err != nil {
		fmt.Fprintln(stderr, "bqobserver:", err)
		return 2
	}
	kctx, err := parser.Parse(args)
	if exited >= 0 { // --help
		return exited
	}
	if err != nil {
		fmt.Fprintln(stderr, "bqobserver:", err)
		return 2
	}
	e := &env{ctx: ctx, log: newLogger(logWriter(kctx.Command(), stdout, stderr), cli.LogLevel), stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	if err := kctx.Run(&cli.Globals, e); err != nil {
		if !errors.Is(err, errExit) {
			e.log.Error("bqobserver failed", "command", kctx.Command(), "error", err.Error())
		}
		return 1
	}
	return 0
}
