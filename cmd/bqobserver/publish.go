package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"cloud.google.com/go/pubsub/v2"
)

// PublishCmd publishes audit-log entries to the audit topic, as the
// organization's log sink would: for testing a sink filter or a deployment.
type PublishCmd struct {
	Files        []string `arg:"" optional:"" type:"existingfile" help:"Files holding a LogEntry, a JSON array of them, JSON lines, or a Pub/Sub push envelope (default: standard input)."`
	AllowInvalid bool     `help:"Publish an entry that is not JSON too (to test the dead-letter path), instead of reporting it and leaving it out."`
}

// Run publishes every entry and waits until Pub/Sub has accepted each one.
func (c *PublishCmd) Run(g *Globals, e *env) error {
	if g.Project == "" && e.getenv("PUBSUB_EMULATOR_HOST") == "" {
		return errors.New("nothing to publish to: set --project (BQOBSERVER_PROJECT) or PUBSUB_EMULATOR_HOST")
	}
	inputs, bad := readInputs(c.Files, e.stdin, e.stderr)
	if !c.AllowInvalid {
		// A sink publishes JSON: a line that is not is a mistake in the
		// file, which the service would only dead-letter.
		valid := inputs[:0]
		for _, in := range inputs {
			if json.Valid(in.Data) {
				valid = append(valid, in)
				continue
			}
			bad++
			fmt.Fprintf(e.stderr, "%s: not JSON, not published (--allow-invalid publishes it, to test the dead-letter path)\n", in.Name)
		}
		inputs = valid
	}
	b, err := openPubSubOnly(e, g)
	if err != nil {
		return err
	}
	defer b.Close()
	pub := b.PubSub.Publisher(g.AuditTopic)
	defer pub.Stop()
	results := make([]*pubsub.PublishResult, len(inputs))
	for i, in := range inputs {
		results[i] = pub.Publish(e.ctx, &pubsub.Message{Data: in.Data, Attributes: in.Attributes})
	}
	published := 0
	for i, r := range results {
		if _, err := r.Get(e.ctx); err != nil {
			bad++
			fmt.Fprintf(e.stderr, "%s: not published: %v\n", inputs[i].Name, err)
			continue
		}
		published++
	}
	fmt.Fprintf(e.stdout, "published %d entries to %s\n", published, g.AuditTopic)
	if bad > 0 {
		return errExit
	}
	return nil
}

// openPubSubOnly connects to Pub/Sub alone, for the tools that need nothing else.
func openPubSubOnly(e *env, g *Globals) (*backends, error) {
	b := &backends{}
	if err := b.openPubSub(e.ctx, g, e.getenv); err != nil {
		return nil, errors.Join(err, b.Close())
	}
	return b, nil
}
