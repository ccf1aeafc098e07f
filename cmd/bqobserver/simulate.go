package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/schollz/progressbar/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bqobserver/bqobserver/internal/simulation"
)

// SimulateCmd drives anything that speaks Pub/Sub with a simulated
// organization's BigQuery audit-log traffic, and can serve the
// organization's BigQuery jobs API beside it.
type SimulateCmd struct {
	Rate        float64       `help:"Jobs submitted per second of simulated time, organization-wide; each job yields about two entries per format." default:"1"`
	Projects    int           `help:"Number of projects in the organization." default:"50"`
	Duration    time.Duration `help:"Simulated time to run for; 0 runs until interrupted (real time only)." default:"0s"`
	Formats     []string      `help:"Audit formats to write: v1 (AuditData), v2 (BigQueryAuditMetadata), or both." default:"v1,v2" sep:","`
	Seed        uint64        `help:"Seed of the organization and its activity: the same seed gives the same entries in virtual time." default:"1"`
	Start       string        `help:"Simulated start time, RFC 3339 (default: now in real time, 2025-03-03T08:00:00Z in virtual time)."`
	Speed       float64       `help:"In real time, how many times faster than the wall clock simulated time runs." default:"1"`
	VirtualTime bool          `help:"Generate the whole --duration as fast as possible instead of in real time."`
	Topic       string        `help:"Topic to publish to (default: --audit-topic), in --project or the emulator."`
	Output      string        `help:"Write the entries as JSON lines to this file ('-' for standard output) instead of publishing them."`
	APIAddr     string        `name:"api-addr" help:"Serve the simulated BigQuery jobs API on this address (for example 127.0.0.1:9050); clients use the endpoint http://ADDR/bigquery/v2/."`
	// 1h: enrichment reads a job whose completion entry was lost within
	// minutes of its end, and a day at --rate 50 would hold 17 GB.
	APIRetention time.Duration `name:"api-retention" help:"How long after its end the simulated jobs API still shows a finished job (404 after). The simulation holds about 4 KB per job it shows: --rate × (this + how long jobs run)." default:"1h"`

	Jitter              time.Duration `help:"Spread of the usual delivery latency." default:"1s"`
	DuplicateShare      float64       `help:"Share of entries delivered twice." default:"0.02"`
	ReorderShare        float64       `help:"Share of short jobs whose first entries arrive after their completion." default:"0.01"`
	DelayShare          float64       `help:"Share of entries delivered late." default:"0.05"`
	MaxDelay            time.Duration `help:"Longest extra delay of a late entry." default:"2m"`
	LostCompletionShare float64       `help:"Share of jobs whose completion entries never arrive." default:"0.005"`
}

// Run simulates until the duration ends or SIGINT, then prints what it sent.
func (c *SimulateCmd) Run(g *Globals, e *env) error {
	cfg, err := c.config()
	if err != nil {
		return err
	}
	if err := c.check(g, e); err != nil {
		return err
	}
	org, err := simulation.New(cfg)
	if err != nil {
		return err
	}
	sink, err := c.openSink(g, e)
	if err != nil {
		return err
	}
	stopAPI, err := c.serveAPI(e, org)
	if err != nil {
		return errors.Join(err, sink.close(e.ctx))
	}
	runErr := c.simulate(e, org, sink)
	// One bound, --shutdown-timeout, on flushing and stopping.
	stop, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), g.ShutdownTimeout)
	defer cancel()
	err = errors.Join(runErr, sink.close(stop), stopAPI(stop))
	c.summarize(e, org, sink)
	return err
}

// config turns the flags into the simulation's configuration.
func (c *SimulateCmd) config() (simulation.Config, error) {
	cfg := simulation.Config{
		Seed: c.Seed, Projects: c.Projects, Rate: c.Rate, Formats: c.Formats, Speed: c.Speed, Retention: c.APIRetention,
		Delivery: &simulation.Delivery{
			Jitter: c.Jitter, DuplicateShare: c.DuplicateShare, ReorderShare: c.ReorderShare,
			DelayShare: c.DelayShare, MaxDelay: c.MaxDelay, LostCompletionShare: c.LostCompletionShare,
		},
	}
	if c.Start != "" {
		t, err := time.Parse(time.RFC3339Nano, c.Start)
		if err != nil {
			return cfg, fmt.Errorf("reading --start: %w", err)
		}
		cfg.Start = t
	}
	return cfg, cfg.Validate()
}

// check rejects flag combinations that cannot work.
func (c *SimulateCmd) check(g *Globals, e *env) error {
	var errs []error
	if c.VirtualTime && c.Duration <= 0 {
		errs = append(errs, errors.New("--virtual-time needs a --duration"))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("--duration must not be negative, not %s", c.Duration))
	}
	if c.APIRetention <= 0 {
		// The simulation reads 0 as its own default, a day.
		errs = append(errs, fmt.Errorf("--api-retention must be positive, not %s", c.APIRetention))
	}
	if c.Output == "" && g.Project == "" && e.getenv("PUBSUB_EMULATOR_HOST") == "" {
		errs = append(errs, errors.New("nothing to send to: set --output, --project (BQOBSERVER_PROJECT) or PUBSUB_EMULATOR_HOST"))
	}
	return errors.Join(errs...)
}

// simulate runs the organization in virtual or real time into sink, with
// a progress bar on standard error.
func (c *SimulateCmd) simulate(e *env, org *simulation.Org, sink entrySink) error {
	// The bar counts from the first entry: in real time the simulation's
	// clock starts with Run, and before it reads the virtual start.
	var start time.Time
	bar := c.progress(e)
	defer func() { _ = bar.Finish() }() // the bar is decoration
	sent := 0
	send := func(ctx context.Context, en simulation.Entry) error {
		if err := sink.send(ctx, en); err != nil {
			return err
		}
		if sent++; sent%1000 == 0 {
			bar.Describe(behindDescription(org.Behind()))
		}
		if start.IsZero() {
			start = en.Published
		}
		if c.Duration > 0 {
			_ = bar.Set64(int64(en.Published.Sub(start) / time.Second)) // the bar is decoration
		} else {
			_ = bar.Add(1)
		}
		return nil
	}
	if c.VirtualTime {
		for en := range org.Generate(c.Duration) {
			if e.ctx.Err() != nil {
				return nil
			}
			if err := send(e.ctx, en); err != nil {
				return err
			}
		}
		return nil
	}
	ctx := e.ctx
	if c.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(float64(c.Duration)/c.Speed))
		defer cancel()
	}
	err := org.Run(ctx, send)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil // interrupted, or --duration is over: close flushes what is pending
	}
	return err
}

// behindDescription is the progress bar's description: it says how far
// the simulation is behind real time when the entries' destination does not
// take them as fast as the simulation makes them (see simulation.Org.Run).
func behindDescription(behind time.Duration) string {
	if behind < time.Second {
		return "simulating"
	}
	return fmt.Sprintf("simulating, %d s behind", int(behind/time.Second))
}

// progress shows how much simulated time has passed, or, without a
// duration, how many entries were sent.
func (c *SimulateCmd) progress(e *env) *progressbar.ProgressBar {
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetDescription("simulating"),
		progressbar.OptionThrottle(200 * time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.stderr) }),
	}
	if c.Duration > 0 {
		opts = append(opts, progressbar.OptionSetItsString("simulated s"))
		return progressbar.NewOptions64(int64(c.Duration/time.Second), opts...)
	}
	// A spinner that turns by itself does so from a goroutine of the
	// library's that reads the bar's state unlocked (a data race): this
	// one turns with each entry.
	opts = append(opts, progressbar.OptionSetItsString("entries"), progressbar.OptionShowIts(),
		progressbar.OptionSetSpinnerChangeInterval(0))
	return progressbar.NewOptions64(-1, opts...)
}

// serveAPI serves the jobs API on --api-addr, if set, until the returned
// function is called.
func (c *SimulateCmd) serveAPI(e *env, org *simulation.Org) (func(context.Context) error, error) {
	if c.APIAddr == "" {
		return func(context.Context) error { return nil }, nil
	}
	ln, err := net.Listen("tcp", c.APIAddr)
	if err != nil {
		return nil, fmt.Errorf("listening for the jobs API on %s: %w", c.APIAddr, err)
	}
	e.log.Info("serving the simulated BigQuery jobs API", "endpoint", "http://"+ln.Addr().String()+"/bigquery/v2/")
	srv := newHTTPServer(ln, org.JobsAPI(), e.log)
	served := make(chan error, 1)
	go func() { served <- srv.serve(e.ctx) }()
	return func(ctx context.Context) error {
		return errors.Join(srv.shutdown(ctx), <-served)
	}, nil
}

// summarize prints what was sent: on standard output, or on standard
// error when the entries themselves went to standard output.
func (c *SimulateCmd) summarize(e *env, org *simulation.Org, sink entrySink) {
	w := e.stdout
	if c.Output == "-" {
		w = e.stderr
	}
	writeSummary(w, org.Stats(), org.Now())
	if ts, ok := sink.(*topicSink); ok && ts.dropped > 0 {
		fmt.Fprintf(w, "dropped: %d entries, while the topic did not exist\n", ts.dropped)
	}
}

func writeSummary(w io.Writer, s simulation.Stats, until time.Time) {
	fmt.Fprintf(w, "simulated until %s: %d jobs (%d script statements), %d running\n",
		until.Format(time.RFC3339), s.Jobs, s.ChildJobs, s.Running)
	fmt.Fprintf(w, "entries sent: %d (%s)\n", s.Entries, joinCounts(s.ByFormat, " "))
	kinds := make([]string, 0, len(s.ByKind))
	for k := range s.ByKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "  %-18s %d\n", k, s.ByKind[k])
	}
	fmt.Fprintf(w, "delivery: %d redelivered, %d late, %d jobs reordered, %d completion entries lost\n",
		s.Redeliveries, s.Delayed, s.Reordered, s.Lost)
}

func joinCounts(m map[string]int, sep string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ","+sep)
}

// entrySink is where simulate sends entries: a file of JSON lines or the
// audit topic.
type entrySink interface {
	send(ctx context.Context, e simulation.Entry) error
	// close flushes what is buffered and reports what failed.
	close(ctx context.Context) error
}

func (c *SimulateCmd) openSink(g *Globals, e *env) (entrySink, error) {
	switch c.Output {
	case "":
		return openTopicSink(e, g, cmp.Or(c.Topic, g.AuditTopic))
	case "-":
		return &lineSink{w: bufio.NewWriterSize(e.stdout, 1<<16)}, nil
	}
	f, err := os.Create(c.Output)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", c.Output, err)
	}
	return &lineSink{w: bufio.NewWriterSize(f, 1<<16), closer: f}, nil
}

// lineSink writes each entry's LogEntry as one JSON line, which
// `bqobserver decode` and `bqobserver publish` read back.
type lineSink struct {
	w      *bufio.Writer
	closer io.Closer
}

func (s *lineSink) send(_ context.Context, e simulation.Entry) error {
	if _, err := s.w.Write(e.Data); err != nil {
		return fmt.Errorf("writing entries: %w", err)
	}
	if err := s.w.WriteByte('\n'); err != nil {
		return fmt.Errorf("writing entries: %w", err)
	}
	return nil
}

func (s *lineSink) close(context.Context) error {
	err := s.w.Flush()
	if s.closer != nil {
		err = errors.Join(err, s.closer.Close())
	}
	if err != nil {
		return fmt.Errorf("writing entries: %w", err)
	}
	return nil
}

// topicSink publishes entries with their attributes, as the sink would.
// At most maxInFlight publishes are outstanding. Like Cloud Logging's sink,
// it publishes again what Pub/Sub did not take for a passing reason (a
// deadline, the service unavailable or out of quota), after a backoff, and
// drops the entries of a topic that does not exist (not created yet, or
// lost with an emulator that restarted) until it does again, saying so in
// its log when the topic goes and when it comes back; any other failure
// stops the simulation.
type topicSink struct {
	b       *backends // closed with the sink when the sink opened it
	pub     *pubsub.Publisher
	topic   string
	log     *slog.Logger // hears of every publish made again
	pending []publishing
	// retried counts the publishes made again, dropped the entries
	// dropped for want of the topic; missing: the latest publish found the
	// topic missing.
	retried, dropped int
	missing          bool
}

// publishing is a message on its way, with its result.
type publishing struct {
	msg *pubsub.Message
	res *pubsub.PublishResult
}

const maxInFlight = 1000

// republishBackoff bounds the wait before a failed publish is made again.
var republishBackoff = struct{ first, max time.Duration }{time.Second, 30 * time.Second}

func openTopicSink(e *env, g *Globals, topic string) (*topicSink, error) {
	b, err := openPubSubOnly(e, g)
	if err != nil {
		return nil, err
	}
	s := newTopicSink(b.PubSub, topic, e.log)
	s.b = b
	return s, nil
}

// newTopicSink publishes to topic through c, which the caller keeps.
func newTopicSink(c *pubsub.Client, topic string, log *slog.Logger) *topicSink {
	return &topicSink{pub: c.Publisher(topic), topic: topic, log: log}
}

func (s *topicSink) send(ctx context.Context, e simulation.Entry) error {
	msg := &pubsub.Message{Data: e.Data, Attributes: e.Attributes}
	s.pending = append(s.pending, publishing{msg: msg, res: s.pub.Publish(ctx, msg)})
	for len(s.pending) > 0 {
		if len(s.pending) < maxInFlight {
			select {
			case <-s.pending[0].res.Ready():
			default:
				return nil
			}
		}
		if err := s.settleFirst(ctx); err != nil {
			return err
		}
	}
	return nil
}

// settleFirst waits for the oldest publish, publishing it again (and
// waiting again) while it fails for a passing reason.
func (s *topicSink) settleFirst(ctx context.Context) error {
	wait := republishBackoff.first
	for {
		p := s.pending[0]
		_, err := p.res.Get(ctx)
		if err == nil {
			if s.missing {
				s.missing = false
				s.log.Info("the topic exists again; publishing", "topic", s.topic, "dropped_so_far", s.dropped)
			}
			s.pending = s.pending[1:]
			return nil
		}
		if status.Code(err) == codes.NotFound && ctx.Err() == nil {
			if !s.missing {
				s.missing = true
				s.log.Error("the topic does not exist: its entries are dropped, as a log sink's are, until it does (bqobserver setup, or run with the emulators, creates it)",
					"topic", s.topic, "error", err.Error())
			}
			s.dropped++
			s.pending = s.pending[1:]
			return nil
		}
		if ctx.Err() != nil {
			// Stopped: the caller's context ended, whatever the publish
			// answered meanwhile.
			return fmt.Errorf("publishing to %s: %w (%w)", s.topic, ctx.Err(), err)
		}
		if !passing(err) {
			return fmt.Errorf("publishing to %s: %w", s.topic, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("publishing to %s: %w (%w)", s.topic, ctx.Err(), err)
		case <-time.After(wait):
		}
		s.log.Warn("a publish failed for a passing reason; publishing it again", "topic", s.topic, "error", err.Error(),
			"waited", wait.String())
		wait = min(2*wait, republishBackoff.max)
		s.retried++
		s.pending[0].res = s.pub.Publish(ctx, p.msg)
	}
}

// passing reports whether a publish failed for a reason that passes.
func passing(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch status.Code(err) {
	case codes.DeadlineExceeded, codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.Internal:
		return true
	}
	return false
}

// flush waits for every publish still outstanding, until ctx ends, and
// returns the first failure that does not pass.
func (s *topicSink) flush(ctx context.Context) error {
	for len(s.pending) > 0 {
		if err := s.settleFirst(ctx); err != nil {
			return err
		}
	}
	return nil
}

// close waits for every publish still outstanding, until ctx ends.
func (s *topicSink) close(ctx context.Context) error {
	errs := []error{s.flush(ctx)}
	s.pub.Stop()
	if s.b != nil {
		errs = append(errs, s.b.Close())
	}
	return errors.Join(errs...)
}
