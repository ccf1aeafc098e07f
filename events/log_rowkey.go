package events

import (
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// The layout of the log's table. schema/ROWKEYS.md explains it; changing any
// of these makes existing data unreadable.
const (
	// familyEvents holds events: in job rows one cell per event, qualified
	// by eventQualifier; in time rows one cell, qualified by timeQualifier.
	familyEvents = "e"
	// familyOpen holds the open-jobs index: one empty cell per job.
	familyOpen = "o"

	timeQualifier = "e"
	openQualifier = "o"

	prefixJob  = "j#"
	prefixTime = "t#"
	prefixOpen = "o#"

	// timeShards is the number of time-row shards; a time range is read
	// with one scan per shard.
	timeShards = 16

	// Bigtable's limits on row keys, and the log's on event ids.
	maxRowKeyBytes  = 4096
	maxEventIDBytes = 1024
)

// The times an event may have: its time in nanoseconds since 1970 is a
// non-negative int64, written as 19 zero-padded digits so that keys sort
// in time order.
var (
	minEventTime = time.Unix(0, 0)
	maxEventTime = time.Unix(0, math.MaxInt64)
)

// jobSalt is two hex digits derived from the job key, spreading jobs over
// the key space; a reader computes it from the key.
// It is the low byte of CRC-32 (IEEE) of project NUL location NUL job_id.
// The key's strings are checksummed in place, without a copy: every event
// appended computes it.
func jobSalt(k JobKey) byte {
	crc := crc32.Update(0, crc32.IEEETable, stringBytes(k.Project))
	crc = crc32.Update(crc, crc32.IEEETable, nul)
	crc = crc32.Update(crc, crc32.IEEETable, stringBytes(k.Location))
	crc = crc32.Update(crc, crc32.IEEETable, nul)
	return byte(crc32.Update(crc, crc32.IEEETable, stringBytes(k.JobID)))
}

var nul = []byte{0}

// stringBytes is s's bytes, not copied: they must not be written.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// jobPathLen is the length of jobPath(k).
func jobPathLen(k JobKey) int { return 7 + len(k.Project) + len(k.Location) + len(k.JobID) }

// jobPath is the part of a job's row keys after the two-byte prefix:
// <salt>#<project>#<location>#<job_id>, with the prefix's room before it.
func jobPath(k JobKey) []byte {
	const hexDigits = "0123456789abcdef"
	salt := jobSalt(k)
	b := make([]byte, 0, jobPathLen(k))
	b = append(b, 0, 0, hexDigits[salt>>4], hexDigits[salt&0xf], '#')
	b = append(append(append(append(append(b, k.Project...), '#'), k.Location...), '#'), k.JobID...)
	return b
}

// rowKey returns prefix followed by a path from jobPath.
func rowKey(prefix string, path []byte) string {
	copy(path, prefix)
	return string(path)
}

func jobRowKey(k JobKey) string  { return rowKey(prefixJob, jobPath(k)) }
func openRowKey(k JobKey) string { return rowKey(prefixOpen, jobPath(k)) }

// timeShard is the shard of an event's time row, from its id.
func timeShard(id string) int { return int(crc32.ChecksumIEEE([]byte(id)) % timeShards) }

// eventQualifier is an event's column in its job row:
// <time ns, 19 digits>#<id>, so that cells sort by (Time, ID).
func eventQualifier(t time.Time, id string) string {
	b := make([]byte, 0, 20+len(id))
	b = appendNanos(b, t)
	b = append(b, '#')
	return string(append(b, id...))
}

// timeRowKey is an event's time row: t#<shard 2 digits>#<qualifier>.
func timeRowKey(t time.Time, id string) string {
	b := make([]byte, 0, 25+len(id))
	b = append(b, shardPrefix(timeShard(id))...)
	b = appendNanos(b, t)
	b = append(b, '#')
	return string(append(b, id...))
}

// shardPrefixLen is the length of a shard prefix, t#<2 digits>#.
const shardPrefixLen = len(prefixTime) + 3

func shardPrefix(shard int) string {
	return prefixTime + string([]byte{'0' + byte(shard/10), '0' + byte(shard%10)}) + "#"
}

// timeBound is the first time-row key of shard at or after t: a range
// [timeBound(from), timeBound(to)) holds exactly the times in [from, to).
func timeBound(shard int, t time.Time) string {
	p := shardPrefix(shard)
	switch {
	case t.Before(minEventTime):
		return p
	case !t.Before(maxEventTime):
		return p + ":" // ':' sorts after every digit
	}
	return string(appendNanos([]byte(p), t))
}

func appendNanos(b []byte, t time.Time) []byte {
	var digits [19]byte
	s := strconv.AppendInt(digits[:0], t.UnixNano(), 10)
	for range 19 - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

// errRefusedJobKey is wrapped by parseOpenRowKey's error for a row of the
// index's shape whose job key Validate refuses.
var errRefusedJobKey = errors.New("a job key the log refuses")

// parseOpenRowKey returns the job of an open-index row key.
func parseOpenRowKey(key string) (JobKey, error) {
	parts := strings.Split(strings.TrimPrefix(key, prefixOpen), "#")
	if !strings.HasPrefix(key, prefixOpen) || len(parts) != 4 {
		return JobKey{}, fmt.Errorf("open-jobs row key %q is not o#<salt>#<project>#<location>#<job_id>", key)
	}
	k := JobKey{Project: parts[1], Location: parts[2], JobID: parts[3]}
	if err := k.Validate(); err != nil {
		return JobKey{}, fmt.Errorf("open-jobs row key %q: %w: %w", key, errRefusedJobKey, err)
	}
	return k, nil
}

// checkKeys reports whether an event can be stored under the log's keys:
// its time fits the 19 digits and its keys fit Bigtable's limits.
func checkKeys(e *Event) error {
	var errs []error
	if e.Time.Before(minEventTime) || !e.Time.Before(maxEventTime) {
		errs = append(errs, fmt.Errorf("time %s is outside %d to %d", e.Time.Format(time.RFC3339Nano), minEventTime.Year(), maxEventTime.Year()))
	}
	if len(e.ID) > maxEventIDBytes {
		errs = append(errs, fmt.Errorf("id is %d bytes, more than %d", len(e.ID), maxEventIDBytes))
	}
	if n := jobPathLen(e.Job); n > maxRowKeyBytes {
		errs = append(errs, fmt.Errorf("job key makes a row key of %d bytes, more than %d", n, maxRowKeyBytes))
	}
	return errors.Join(errs...)
}
