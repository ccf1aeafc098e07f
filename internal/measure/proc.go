package measure

import (
	"fmt"
	"time"

	"github.com/prometheus/procfs"
)

// Usage is a process's CPU time (user and system) and resident memory at
// one moment.
type Usage struct {
	CPU time.Duration
	RSS int64 // bytes
}

// ProcessUsage reads the usage of process pid from /proc.
func ProcessUsage(pid int) (Usage, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return Usage{}, fmt.Errorf("reading process %d: %w", pid, err)
	}
	st, err := p.Stat()
	if err != nil {
		return Usage{}, fmt.Errorf("reading the stat of process %d: %w", pid, err)
	}
	return Usage{CPU: time.Duration(st.CPUTime() * float64(time.Second)), RSS: int64(st.ResidentMemory())}, nil
}

// PeakRSS reads the most process pid has been resident with since it
// started (VmHWM), in bytes. Samplers read ProcessUsage; this is for a
// measure taken once.
func PeakRSS(pid int) (int64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, fmt.Errorf("reading process %d: %w", pid, err)
	}
	status, err := p.NewStatus()
	if err != nil {
		return 0, fmt.Errorf("reading the status of process %d: %w", pid, err)
	}
	return int64(status.VmHWM), nil
}
