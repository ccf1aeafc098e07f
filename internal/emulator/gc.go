package emulator

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// GCEvent is one step of an emulator's garbage collector: a stop-the-world
// pause of the Pub/Sub emulator's JVM, or one collection of cbtemulator's
// Go runtime.
type GCEvent struct {
	At    time.Time     // when it was logged (a JVM pause) or began (a Go collection)
	Pause time.Duration // the time the emulator's own work stood still
	CPU   time.Duration // the CPU the collection took (Go only: the JVM logs no CPU per pause)
}

// GC reads the collections the emulator has logged so far (see GCLog). The
// emulators keep everything they are sent in memory, so their collectors
// work harder the longer a load runs; what they log shows when a stall of
// the service's writes or deliveries was an emulator collecting.
func (p *Process) GC() ([]GCEvent, error) {
	f, err := os.Open(p.GCLog)
	if err != nil {
		return nil, fmt.Errorf("reading the %s emulator's GC log: %w", p.Name, err)
	}
	defer f.Close()
	if p.Name == "pubsub" {
		return jvmGC(f)
	}
	return goGC(f, p.Started)
}

// jvmGC reads pauses from a JVM's unified GC log decorated with UTC times
// (-Xlog:gc:file=…:utctime), lines such as
//
//	[2026-12-04T05:38:42.113+0000][info][gc] GC(43) Pause Young (Prepare Mixed) (G1 Evacuation Pause) 2604M->2519M(4152M) 688.170ms
//
// Concurrent phases run beside the emulator's work and are not pauses.
func jvmGC(r io.Reader) ([]GCEvent, error) {
	var evs []GCEvent
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, " Pause ") || !strings.HasPrefix(line, "[") || !strings.HasSuffix(line, "ms") {
			continue
		}
		end := strings.IndexByte(line, ']')
		at, err := time.Parse("2006-01-02T15:04:05.000-0700", line[1:max(end, 1)])
		if err != nil {
			return nil, fmt.Errorf("a JVM GC log line without a UTC time (-Xlog:gc:…:utctime): %q", line)
		}
		ms, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:len(line)-2], 64)
		if err != nil {
			return nil, fmt.Errorf("a JVM GC pause without its duration: %q", line)
		}
		evs = append(evs, GCEvent{At: at.UTC(), Pause: msDuration(ms)})
	}
	return evs, sc.Err()
}

// goTrace is a line of the Go runtime's GODEBUG=gctrace=1:
//
//	gc 11 @307.930s 1%: 0.14+7291+0.55 ms clock, 0.28+6.2/3658/7643+1.1 ms cpu, 2728->2860->2137 MB, 2937 MB goal, 0 MB stacks, 0 MB globals, 2 P
//
// The clock's three parts are the stop-the-world sweep termination, the
// concurrent mark and the stop-the-world mark termination; the CPU's are
// the same with the mark split into assists, background and idle workers.
var goTrace = regexp.MustCompile(`^gc \d+ @([0-9.]+)s \d+%: ([0-9.]+)\+[0-9.]+\+([0-9.]+) ms clock, ([0-9.+/]+) ms cpu`)

// goGC reads the collections of a Go program's gctrace, whose times count
// from its start.
func goGC(r io.Reader, started time.Time) ([]GCEvent, error) {
	var evs []GCEvent
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := goTrace.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		secs, _ := strconv.ParseFloat(m[1], 64) // the pattern admits only numbers
		stw1, _ := strconv.ParseFloat(m[2], 64)
		stw2, _ := strconv.ParseFloat(m[3], 64)
		var cpu float64
		for _, part := range strings.FieldsFunc(m[4], func(r rune) bool { return r == '+' || r == '/' }) {
			v, err := strconv.ParseFloat(part, 64)
			if err != nil {
				return nil, fmt.Errorf("a gctrace line with CPU %q: %w", m[4], err)
			}
			cpu += v
		}
		evs = append(evs, GCEvent{At: started.Add(time.Duration(secs * float64(time.Second))),
			Pause: msDuration(stw1 + stw2), CPU: msDuration(cpu)})
	}
	return evs, sc.Err()
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }
