package auditlog

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/bqobserver/bqobserver/events"
)

// benchMix returns the fixtures of one format that a sink would deliver:
// job events and the skippable entries that travel with them, not the
// malformed ones.
func benchMix(b *testing.B, format string) [][]byte {
	b.Helper()
	var mix [][]byte
	for _, file := range fixtures(b) {
		if !strings.HasPrefix(filepath.Base(file), format+"-") {
			continue
		}
		entry, err := os.ReadFile(file)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(entry); errors.Is(err, events.ErrInvalid) {
			continue
		}
		mix = append(mix, entry)
	}
	if len(mix) == 0 {
		b.Fatalf("no %s fixtures", format)
	}
	return mix
}

// runMix runs decode over every entry of the mix per iteration and reports
// throughput in entries/s beside the MB/s that SetBytes yields.
func runMix(b *testing.B, mix [][]byte, decode func([]byte) error) {
	var size int64
	for _, e := range mix {
		size += int64(len(e))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, e := range mix {
			if err := decode(e); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(mix))/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkDecode measures Decode over a realistic mix of entries per
// format. Compare it with BenchmarkUnmarshalMap, its ceiling: decoding
// must be at least as fast as unmarshalling the same bytes into a map.
func BenchmarkDecode(b *testing.B) {
	for _, format := range []string{"v1", "v2"} {
		b.Run(format, func(b *testing.B) {
			runMix(b, benchMix(b, format), func(e []byte) error {
				_, err := Decode(e)
				if errors.Is(err, ErrSkip) {
					return nil
				}
				return err
			})
		})
	}
}

// BenchmarkUnmarshalMap is the ceiling for BenchmarkDecode: plain
// json.Unmarshal of the same entries into map[string]any.
func BenchmarkUnmarshalMap(b *testing.B) {
	for _, format := range []string{"v1", "v2"} {
		b.Run(format, func(b *testing.B) {
			runMix(b, benchMix(b, format), func(e []byte) error {
				var m map[string]any
				return json.Unmarshal(e, &m)
			})
		})
	}
}

// BenchmarkUnmarshalWire measures the JSON part of Decode alone: reading
// the same entries into the wire types with the fast decoder Decode uses,
// and with encoding/json, which Decode uses only to explain an entry the
// fast decoder rejects.
func BenchmarkUnmarshalWire(b *testing.B) {
	decoders := []struct {
		name      string
		unmarshal func([]byte, *logEntry) error
	}{
		{"fast", func(e []byte, w *logEntry) error { return jsonv2.Unmarshal(e, w, wireOptions) }},
		{"encoding-json", func(e []byte, w *logEntry) error { return json.Unmarshal(e, w) }},
	}
	for _, format := range []string{"v1", "v2"} {
		for _, d := range decoders {
			b.Run(format+"/"+d.name, func(b *testing.B) {
				runMix(b, benchMix(b, format), func(e []byte) error {
					var w logEntry
					return d.unmarshal(e, &w)
				})
			})
		}
	}
}
