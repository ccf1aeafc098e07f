package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bqobserver/bqobserver/events/auditlog"
)

// DecodeCmd decodes audit-log entries as the ingest pipeline would, so that a
// user can check what their sink delivers.
type DecodeCmd struct {
	Files []string `arg:"" optional:"" type:"existingfile" help:"Files holding a LogEntry, a JSON array of them, JSON lines, or a Pub/Sub push envelope (default: standard input)."`
}

// Run prints one JSON line per decoded event on standard output, and one line
// per skipped or malformed entry (or unreadable file), and per entry whose
// implausible values were dropped, on standard error. It fails if anything
// was malformed.
func (c *DecodeCmd) Run(_ *Globals, e *env) error {
	inputs, bad := readInputs(c.Files, e.stdin, e.stderr)
	enc := json.NewEncoder(e.stdout)
	for _, in := range inputs {
		evs, dropped, err := auditlog.DecodeAt(in.Data, time.Now())
		if len(dropped) > 0 {
			fmt.Fprintf(e.stderr, "%s: warning: implausible values dropped, the entry kept: %v\n", in.Name, dropped)
		}
		var skip *auditlog.SkipError
		switch {
		case errors.As(err, &skip):
			fmt.Fprintf(e.stderr, "%s: skipped (%s): %s\n", in.Name, skip.Reason, skip.Detail)
		case err != nil:
			bad++
			fmt.Fprintf(e.stderr, "%s: error: %v\n", in.Name, err)
		}
		for i := range evs {
			if err := enc.Encode(&evs[i]); err != nil {
				return fmt.Errorf("writing event: %w", err)
			}
		}
	}
	if bad > 0 {
		fmt.Fprintf(e.stderr, "%d inputs malformed or unreadable\n", bad)
		return errExit
	}
	return nil
}

// readInputs splits every file (or standard input when there are none) into
// single entries. A file that cannot be read or split is reported on stderr
// and counted in bad; the others go on.
func readInputs(files []string, stdin io.Reader, stderr io.Writer) (inputs []auditlog.Input, bad int) {
	read := func(name string, r func() ([]byte, error)) {
		data, err := r()
		if err == nil {
			var ins []auditlog.Input
			if ins, err = auditlog.Split(name, data); err == nil {
				inputs = append(inputs, ins...)
				return
			}
		}
		bad++
		fmt.Fprintf(stderr, "%s: error: %v\n", name, err)
	}
	if len(files) == 0 {
		read("stdin", func() ([]byte, error) { return io.ReadAll(stdin) })
	}
	for _, f := range files {
		read(f, func() ([]byte, error) { return os.ReadFile(f) })
	}
	return inputs, bad
}
