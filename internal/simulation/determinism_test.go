package simulation_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bqobserver/bqobserver/internal/simulation"
	"github.com/bqobserver/bqobserver/internal/testutil/golden"
)

// stream is what a subscriber receives: the bytes, attributes and
// delivery time of each entry, in order.
type stream struct {
	Data       []string
	Attributes []map[string]string
	Published  []time.Time
}

func record(seq func(func(simulation.Entry) bool), s *stream) {
	for e := range seq {
		s.Data = append(s.Data, string(e.Data))
		s.Attributes = append(s.Attributes, e.Attributes)
		s.Published = append(s.Published, e.Published)
	}
}

func newOrg(t *testing.T, cfg simulation.Config) *simulation.Org {
	t.Helper()
	org, err := simulation.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return org
}

func TestSameSeedSameEntries(t *testing.T) {
	cfg := simulation.Config{Seed: 99, Rate: 2}
	var a, b, pieces stream
	record(newOrg(t, cfg).Generate(time.Hour), &a)
	record(newOrg(t, cfg).Generate(time.Hour), &b)
	split := newOrg(t, cfg)
	for range 4 {
		record(split.Generate(15*time.Minute), &pieces)
	}
	if len(a.Data) < 10000 {
		t.Fatalf("only %d entries in an hour", len(a.Data))
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("two runs of the same seed differ (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(a, pieces); diff != "" {
		t.Errorf("an hour in one go differs from an hour in four pieces (-one +pieces):\n%s", diff)
	}
	var other stream
	record(newOrg(t, simulation.Config{Seed: 100, Rate: 2}).Generate(time.Hour), &other)
	if len(other.Data) > 0 && other.Data[0] == a.Data[0] {
		t.Error("seeds 99 and 100 start with the same entry")
	}
}

// TestStoppingEarlyResumes checks that breaking out of Generate leaves the
// rest of the stream for the next call.
func TestStoppingEarlyResumes(t *testing.T) {
	cfg := simulation.Config{Seed: 4}
	var whole, resumed stream
	record(newOrg(t, cfg).Generate(time.Hour), &whole)
	org := newOrg(t, cfg)
	n := 0
	for e := range org.Generate(time.Hour) {
		resumed.Data = append(resumed.Data, string(e.Data))
		resumed.Attributes = append(resumed.Attributes, e.Attributes)
		resumed.Published = append(resumed.Published, e.Published)
		if n++; n == 100 {
			break
		}
	}
	rest := whole.Published[len(whole.Published)-1].Sub(org.Now()) + time.Nanosecond
	record(org.Generate(rest), &resumed)
	if diff := cmp.Diff(whole, resumed); diff != "" {
		t.Errorf("a stream resumed after 100 entries differs (-whole +resumed):\n%s", diff)
	}
}

// TestGolden pins the first minutes of one organization: the entries
// themselves, compared as JSON. Run with -update after a deliberate change.
func TestGolden(t *testing.T) {
	org := newOrg(t, simulation.Config{Seed: 1, Rate: 0.2, Projects: 3})
	var lines []string
	for e := range org.Generate(3 * time.Minute) {
		lines = append(lines, string(e.Data))
	}
	golden.JSONLines(t, filepath.Join("testdata", "seed1-3min.golden.jsonl"), lines)
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  simulation.Config
		want []string // substrings of the error, one per problem
	}{
		{"defaults", simulation.Config{}, nil},
		{"perfect delivery", simulation.Config{Delivery: &simulation.Delivery{}}, nil},
		{"everything wrong", simulation.Config{Projects: -1, Rate: -2, Formats: []string{"v3", "v1", "v1"}, Speed: -1, Retention: -time.Hour,
			Delivery: &simulation.Delivery{DuplicateShare: 2, DelayShare: 0.1, MaxDelay: time.Second, Jitter: -1}},
			[]string{"projects", "rate", `format "v3"`, "format v1 is listed twice", "speed", "retention", "duplicate share", "max delay", "jitter"}},
		{"jobs API out of range", simulation.Config{StatisticsInterval: -time.Second, DurationScale: 1000,
			Faults: simulation.Faults{RateLimitShare: 0.8, BackendErrorShare: 0.5, ProjectQPS: -1, RateLimitStatus: 500}},
			[]string{"statistics interval", "duration scale", "shares add up to 1.3", "project QPS", "rate limit status"}},
		{"jobs API faults", simulation.Config{Faults: simulation.Faults{RateLimitShare: 0.1, BackendErrorShare: 0.1, ProjectQPS: 5, RateLimitStatus: 403}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var got []string
			for _, w := range tc.want {
				if err != nil && strings.Contains(err.Error(), w) {
					got = append(got, w)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" || (err != nil) != (tc.want != nil) {
				t.Errorf("Validate() = %v; problems found (-want +got):\n%s", err, diff)
			}
			if _, nerr := simulation.New(tc.cfg); (nerr != nil) != (tc.want != nil) {
				t.Errorf("New() error = %v, want one: %v", nerr, tc.want != nil)
			}
		})
	}
}

func TestFormatsSelectWhatIsWritten(t *testing.T) {
	for _, format := range []string{simulation.FormatV1, simulation.FormatV2} {
		org := newOrg(t, simulation.Config{Seed: 2, Formats: []string{format}})
		n := 0
		for e := range org.Generate(30 * time.Minute) {
			n++
			if e.Format != format {
				t.Fatalf("a %s entry from a simulation of %s only", e.Format, format)
			}
		}
		if n < 1000 {
			t.Errorf("%d %s entries in 30 minutes at 1 job/s", n, format)
		}
	}
}
