package measure

import (
	"fmt"
	"math"
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

// Machine is the CPU time all of the machine's CPUs have spent since boot,
// from /proc/stat, in seconds: Busy running anything (user, nice, system,
// interrupts), Steal waiting while the hypervisor ran another guest, and
// Total with idle and I/O wait too. The difference of two readings over
// the difference of their Totals is a share of the machine.
type Machine struct {
	Busy, Steal, Total float64
}

// MachineCPU reads the machine's CPU time from /proc/stat.
func MachineCPU() (Machine, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return Machine{}, fmt.Errorf("reading /proc: %w", err)
	}
	st, err := fs.Stat()
	if err != nil {
		return Machine{}, fmt.Errorf("reading /proc/stat: %w", err)
	}
	return machineOf(st.CPUTotal), nil
}

func machineOf(c procfs.CPUStat) Machine {
	busy := c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ
	return Machine{Busy: busy, Steal: c.Steal, Total: busy + c.Steal + c.Idle + c.Iowait}
}

// Shares are the shares of the machine's CPU time that from and to, two
// readings in that order, differ by: busy and steal, each from 0 to 1;
// NaN for readings that do not span any time (or were not taken).
func (to Machine) Shares(from Machine) (busy, steal float64) {
	total := to.Total - from.Total
	if !(total > 0) {
		return math.NaN(), math.NaN()
	}
	return (to.Busy - from.Busy) / total, (to.Steal - from.Steal) / total
}

// Other is the share of the machine's CPU time, from 0 to 1, that from
// and to, two readings in that order, differ by in busy time beyond
// known, the CPU time the processes one measures took between them: the
// work of everything else on the machine (and the kernel's interrupts).
// NaN for readings that do not span any time.
func (to Machine) Other(from Machine, known time.Duration) float64 {
	total := to.Total - from.Total
	if !(total > 0) {
		return math.NaN()
	}
	return max(to.Busy-from.Busy-known.Seconds(), 0) / total
}
