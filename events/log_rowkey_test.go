package events

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestJobSalt checks the salt against its definition in schema/ROWKEYS.md,
// the low byte of CRC-32 (IEEE) of project NUL location NUL job_id, for
// keys of every length up to a few hundred bytes, non-ASCII ones included:
// row keys written by any version must be found by every other.
func TestJobSalt(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	word := func() string {
		b := make([]byte, r.IntN(300))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	}
	keys := []JobKey{{}, {Project: "p", Location: "US", JobID: "job_1"}, {Project: "prój", Location: "europe-west3", JobID: "bquxjob_1a2b_ü"}}
	for range 2000 {
		keys = append(keys, JobKey{Project: word(), Location: word(), JobID: word()})
	}
	for _, k := range keys {
		want := byte(crc32.ChecksumIEEE([]byte(k.Project + "\x00" + k.Location + "\x00" + k.JobID)))
		if got := jobSalt(k); got != want {
			t.Fatalf("jobSalt(%q) = %#x, want %#x", k, got, want)
		}
		if got, want := jobPathLen(k), len(jobPath(k)); got != want {
			t.Fatalf("jobPathLen(%q) = %d, want %d", k, got, want)
		}
	}
}

// BenchmarkJobRowKey measures a job's row key, which every event appended
// and every job read computes.
func BenchmarkJobRowKey(b *testing.B) {
	k := JobKey{Project: "analytics-prod-4711", Location: "europe-west3", JobID: "bquxjob_5e3a1b2c_18c7f00d1e2"}
	b.ReportAllocs()
	for b.Loop() {
		_ = jobRowKey(k)
	}
}
