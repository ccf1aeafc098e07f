package emulator

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestJVMGC reads the pauses of a G1 log as the Pub/Sub emulator's JVM
// writes it, and nothing of its concurrent phases or other lines.
func TestJVMGC(t *testing.T) {
	log := `[2026-12-04T05:33:25.101+0000][info][gc] Using G1
[2026-12-04T05:33:25.479+0000][info][gc] GC(0) Pause Young (Normal) (G1 Evacuation Pause) 27M->10M(388M) 7.126ms
[2026-12-04T05:38:42.113+0000][info][gc] GC(42) Pause Remark 2470M->2470M(4152M) 13.094ms
[2026-12-04T05:38:43.474+0000][info][gc] GC(42) Pause Cleanup 2512M->2512M(4152M) 0.226ms
[2026-12-04T05:38:44.000+0000][info][gc] GC(42) Concurrent Mark Cycle 1099.661ms
[2026-12-04T05:38:46.509+0100][info][gc] GC(43) Pause Young (Prepare Mixed) (G1 Evacuation Pause) 2604M->2519M(4152M) 688.170ms
`
	got, err := jvmGC(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	want := []GCEvent{
		{At: at("2026-12-04T05:33:25.479Z"), Pause: 7126 * time.Microsecond},
		{At: at("2026-12-04T05:38:42.113Z"), Pause: 13094 * time.Microsecond},
		{At: at("2026-12-04T05:38:43.474Z"), Pause: 226 * time.Microsecond},
		{At: at("2026-12-04T04:38:46.509Z"), Pause: 688170 * time.Microsecond},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("pauses (-got +want):\n%s", diff)
	}

	if _, err := jvmGC(strings.NewReader("[12.5s][info][gc] GC(3) Pause Young (Normal) (G1 Evacuation Pause) 31M->12M(388M) 10.847ms\n")); err == nil {
		t.Error("a log with uptime instead of UTC times was read without an error")
	}
}

// TestGoGC reads the collections of a gctrace as cbtemulator's runtime
// writes it, timed from the process's start.
func TestGoGC(t *testing.T) {
	log := `GC forced
gc 11 @307.930s 1%: 0.14+7291+0.55 ms clock, 0.28+6.2/3658/7643+1.1 ms cpu, 2728->2860->2137 MB, 2937 MB goal, 0 MB stacks, 0 MB globals, 2 P
some other line
gc 12 @437.325s 0%: 0.15+6.7+0.006 ms clock, 0.30+0/0.19/6.6+0.012 ms cpu, 4676->4676->94 MB, 6414 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)
`
	started := time.Date(2026, 12, 4, 5, 33, 25, 0, time.UTC)
	got, err := goGC(strings.NewReader(log), started)
	if err != nil {
		t.Fatal(err)
	}
	want := []GCEvent{
		{At: started.Add(307930 * time.Millisecond), Pause: 690 * time.Microsecond, CPU: 11308580 * time.Microsecond},
		{At: started.Add(437325 * time.Millisecond), Pause: 156 * time.Microsecond, CPU: 7102 * time.Microsecond},
	}
	if diff := cmp.Diff(got, want, cmp.Comparer(func(a, b time.Duration) bool { return (a - b).Abs() < time.Microsecond })); diff != "" {
		t.Errorf("collections (-got +want):\n%s", diff)
	}
}
