package cputest

import (
	"testing"
	"time"
)

// TestUsedCountsThisProcess burns CPU until Used has counted at least
// 50 ms more, within 10 s of the wall clock.
func TestUsedCountsThisProcess(t *testing.T) {
	start := Used(t)
	deadline := time.Now().Add(10 * time.Second)
	x := uint64(1)
	for Used(t)-start < 50*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("Used counted %v in 10 s of a busy loop", Used(t)-start)
		}
		for range 1 << 20 {
			x = x*6364136223846793005 + 1
		}
	}
	if x == 0 {
		t.Log(x) // keeps the loop
	}
}
