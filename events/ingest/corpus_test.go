package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bqobserver/bqobserver/events"
	"github.com/bqobserver/bqobserver/events/auditlog"
)

// corpus is a stream of audit entries with what ingesting it must yield:
// the events the log must hold, and the malformed entries the dead-letter
// topic must hold (with their reasons), and nothing else.
type corpus struct {
	entries    [][]byte                // unique entries, in generation order
	deliveries [][]byte                // every delivery: each entry 1 to 3 times, shuffled
	want       map[string]events.Event // by event id
	malformed  map[string]string       // payload -> reason
	skipped    int
}

// template is a fixture and the strings that make a variant of it unique.
type template struct {
	name   string
	data   []byte
	jobID  string // replaced by a unique job id, "" if the entry has none
	insert string // replaced by a unique insertId, "" if it has none
}

// loadTemplates reads the decoder's fixtures: job events in both formats,
// skippable entries and malformed ones.
func loadTemplates(t testing.TB) []template {
	t.Helper()
	files, err := filepath.Glob("../auditlog/testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in ../auditlog/testdata: %v", err)
	}
	var ts []template
	for _, f := range files {
		if strings.HasSuffix(f, ".golden.json") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tp := template{name: filepath.Base(f), data: data}
		if evs, err := auditlog.Decode(data); err == nil {
			tp.jobID, tp.insert = evs[0].Job.JobID, evs[0].Source.InsertID
		}
		ts = append(ts, tp)
	}
	return ts
}

// variant makes the i-th unique copy of a template: new job id and insertId
// for a job entry, and for the others a unique amount of leading white
// space, which changes nothing in how they decode.
func (tp *template) variant(i int) []byte {
	suffix := "-v" + strconv.Itoa(i)
	d := tp.data
	if tp.jobID != "" {
		d = bytes.ReplaceAll(d, []byte(tp.jobID), []byte(tp.jobID+suffix))
	}
	if tp.insert != "" {
		d = bytes.ReplaceAll(d, []byte(`"`+tp.insert+`"`), []byte(`"`+tp.insert+suffix+`"`))
	}
	if tp.jobID == "" {
		d = append(bytes.Repeat([]byte(" "), i+1), d...)
	}
	return d
}

// newCorpus generates n unique entries from the templates (round robin, so
// every template is used) and delivers each 1 to 3 times, shuffled.
func newCorpus(t testing.TB, n int, seed uint64) *corpus {
	t.Helper()
	ts := loadTemplates(t)
	r := rand.New(rand.NewPCG(seed, 1))
	c := &corpus{want: map[string]events.Event{}, malformed: map[string]string{}}
	for i := range n {
		tp := &ts[i%len(ts)]
		entry := tp.variant(i)
		c.add(t, tp.name, entry)
		for range 1 + r.IntN(3) {
			c.deliveries = append(c.deliveries, entry)
		}
	}
	r.Shuffle(len(c.deliveries), func(i, j int) { c.deliveries[i], c.deliveries[j] = c.deliveries[j], c.deliveries[i] })
	return c
}

func (c *corpus) add(t testing.TB, name string, entry []byte) {
	t.Helper()
	c.entries = append(c.entries, entry)
	evs, err := auditlog.Decode(entry)
	var bad *auditlog.Error
	switch {
	case errors.Is(err, auditlog.ErrSkip):
		c.skipped++
	case errors.As(err, &bad):
		c.malformed[string(entry)] = string(bad.Reason)
	case err != nil:
		t.Fatalf("%s: unexpected decode result %v", name, err)
	}
	for _, e := range evs {
		if old, dup := c.want[e.ID]; dup && old.Job != e.Job {
			t.Fatalf("%s: event id %s collides between two variants", name, e.ID)
		}
		c.want[e.ID] = e
	}
}

// jobEntry returns an entry that carries a job event.
func (c *corpus) jobEntry(t testing.TB) []byte {
	t.Helper()
	for _, e := range c.entries {
		if evs, err := auditlog.Decode(e); err == nil && len(evs) > 0 {
			return e
		}
	}
	t.Fatal("the corpus has no job entry")
	return nil
}

// outcomes counts the deliveries by how they settle: appended (an entry
// with job events), skipped or dead-lettered.
func (c *corpus) outcomes() map[string]int {
	got := map[string]int{}
	for _, d := range c.deliveries {
		_, bad := c.malformed[string(d)]
		evs, err := auditlog.Decode(d)
		switch {
		case bad:
			got["dead_lettered"]++
		case err == nil && len(evs) > 0:
			got["appended"]++
		default:
			got["skipped"]++
		}
	}
	return got
}

// summary describes the corpus for failure messages.
func (c *corpus) summary() string {
	return fmt.Sprintf("%d entries (%d deliveries): %d events, %d skipped, %d malformed",
		len(c.entries), len(c.deliveries), len(c.want), c.skipped, len(c.malformed))
}

// wantEvents returns the expected events ordered by (time, id).
func (c *corpus) wantEvents() []events.Event {
	evs := make([]events.Event, 0, len(c.want))
	for _, e := range c.want {
		evs = append(evs, e)
	}
	sortEvents(evs)
	return evs
}

func sortEvents(evs []events.Event) {
	slices.SortFunc(evs, func(a, b events.Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

func TestCorpusCoversEveryOutcome(t *testing.T) {
	c := newCorpus(t, 400, 1)
	formats := map[string]bool{}
	for _, e := range c.want {
		formats[e.Source.Format] = true
	}
	if !formats["v1"] || !formats["v2"] || c.skipped == 0 || len(c.malformed) == 0 {
		t.Fatalf("corpus lacks a kind of entry: formats %v, %s", formats, c.summary())
	}
	if len(c.deliveries) <= len(c.entries) {
		t.Fatalf("no entry is delivered twice: %s", c.summary())
	}
}
