package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/bqobserver/bqobserver/internal/simulation"
)

// simulationPath is where the embedded mode serves the simulated BigQuery
// jobs API on the service's own HTTP server; clients use the endpoint
// http://ADDR/simulation/bigquery/v2/.
const simulationPath = "/simulation"

// embeddedSimulation is the simulated organization of the embedded mode: it
// publishes its audit entries to the in-process audit topic in real time,
// and serves its jobs API beside the product's.
type embeddedSimulation struct {
	org  *simulation.Org
	sink *topicSink
}

func (c *RunCmd) newSimulation(b *backends, g *Globals) (*embeddedSimulation, error) {
	if !c.Simulate || b.PubSubMode != modeEmbedded {
		return nil, nil
	}
	org, err := simulation.New(simulation.Config{Seed: c.SimulateSeed, Projects: c.SimulateProjects, Rate: c.SimulateRate,
		Retention: c.simulationRetention(g, b)})
	if err != nil {
		return nil, fmt.Errorf("configuring the simulated organization: %w", err)
	}
	return &embeddedSimulation{org: org, sink: newTopicSink(b.PubSub, g.AuditTopic)}, nil
}

// mount serves the jobs API under simulationPath.
func (s *embeddedSimulation) mount(mux *http.ServeMux) {
	if s != nil {
		mux.Handle(simulationPath+"/", http.StripPrefix(simulationPath, s.org.JobsAPI()))
	}
}

// run publishes the organization's entries until ctx ends, then waits
// for the publishes still outstanding until stop's context ends.
func (s *embeddedSimulation) run(ctx context.Context, stop func() context.Context) error {
	if s == nil {
		return nil
	}
	err := s.org.Run(ctx, s.sink.send)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return errors.Join(err, s.sink.close(stop()))
}
