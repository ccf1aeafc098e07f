package running

import (
	"maps"
	"slices"
	"strings"

	"github.com/bqobserver/bqobserver/events"
)

// searchText is what free-text search looks in: the lower-cased
// concatenation of the job id, the user, the tables, the labels and the
// query text, kept in two parts. A caller who may not read the query text
// searches the public part only.
//
// The public part is lower-cased once here, so that no request lower-cases
// it again. The query text, often the longest part by far, is not copied
// when it is ASCII: it is kept as it is and compared without regard to the
// case of ASCII letters, which is what lower-casing it would do. Any other
// query text is kept lower-cased.
type searchText struct {
	public string // every field followed by a NUL byte
	query  string
	fold   bool // query is ASCII, not lower-cased
}

// searchTextOf returns the search text of job j. Fields are separated by a
// NUL byte, so that a term without one never matches across two fields.
func searchTextOf(j *events.Job) searchText {
	var b strings.Builder
	b.Grow(len(j.Key.JobID) + len(j.Principal) + 64)
	for _, s := range []string{j.Key.JobID, j.Principal, j.DestinationTable} {
		b.WriteString(s)
		b.WriteByte(0)
	}
	for _, tables := range [][]string{j.ReferencedTables, j.SourceTables} {
		for _, t := range tables {
			b.WriteString(t)
			b.WriteByte(0)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(j.Labels)) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(j.Labels[k])
		b.WriteByte(0)
	}
	st := searchText{public: strings.ToLower(b.String()), query: j.Query, fold: isASCII(j.Query)}
	if !st.fold {
		st.query = strings.ToLower(j.Query)
	}
	return st
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// contains reports whether the lower-cased term t occurs in the text, or,
// with publicOnly, in its public part.
func (st *searchText) contains(t string, publicOnly bool) bool {
	if strings.Contains(st.public, t) {
		return true
	}
	if publicOnly {
		return false
	}
	if st.fold && indexFold(st.query, t) >= 0 || !st.fold && strings.Contains(st.query, t) {
		return true
	}
	return st.straddles(t)
}

// straddles reports whether t occurs across the end of the public part and
// the start of the query text. The public part ends with a NUL byte, so only
// a term holding one can.
func (st *searchText) straddles(t string) bool {
	for k := 1; k < len(t); k++ {
		if t[k-1] == 0 && strings.HasSuffix(st.public, t[:k]) && st.queryHasPrefix(t[k:]) {
			return true
		}
	}
	return false
}

func (st *searchText) queryHasPrefix(p string) bool {
	if !st.fold {
		return strings.HasPrefix(st.query, p)
	}
	return len(st.query) >= len(p) && hasPrefixFold(st.query, p)
}

// indexFold returns the index of the first occurrence of t in
// strings.ToLower(s), for an ASCII s, or -1: t is lower-case.
func indexFold(s, t string) int {
	if len(t) == 0 {
		return 0
	}
	c, u := t[0], upperASCII(t[0])
	if c == u {
		for i := 0; i+len(t) <= len(s); i++ {
			j := strings.IndexByte(s[i:len(s)-len(t)+1], c)
			if j < 0 {
				return -1
			}
			if i += j; hasPrefixFold(s[i:], t) {
				return i
			}
		}
		return -1
	}
	// The next c and the next u at or after i, each found once.
	nextC, nextU := -2, -2
	for i := 0; i+len(t) <= len(s); i++ {
		end := len(s) - len(t) + 1
		if nextC != -1 && nextC < i {
			nextC = indexFrom(s[:end], c, i)
		}
		if nextU != -1 && nextU < i {
			nextU = indexFrom(s[:end], u, i)
		}
		switch {
		case nextC < 0 && nextU < 0:
			return -1
		case nextU < 0 || nextC >= 0 && nextC < nextU:
			i = nextC
		default:
			i = nextU
		}
		if hasPrefixFold(s[i:], t) {
			return i
		}
	}
	return -1
}

// indexFrom returns the index of the first c in s at or after from, or -1.
func indexFrom(s string, c byte, from int) int {
	if j := strings.IndexByte(s[from:], c); j >= 0 {
		return from + j
	}
	return -1
}

// hasPrefixFold reports whether strings.ToLower(s), for an ASCII s, starts
// with the lower-case t.
func hasPrefixFold(s, t string) bool {
	if len(s) < len(t) {
		return false
	}
	for i := 0; i < len(t); i++ {
		if lowerASCII(s[i], true) != t[i] {
			return false
		}
	}
	return true
}

func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// queryHasWord reports whether the lower-cased word w, of word bytes only,
// is a word of the query text: it occurs there between bytes that are not
// word bytes.
func (st *searchText) queryHasWord(w string) bool {
	q := st.query
	for from := 0; from <= len(q)-len(w); {
		var i int
		if st.fold {
			i = indexFold(q[from:], w)
		} else {
			i = strings.Index(q[from:], w)
		}
		if i < 0 {
			return false
		}
		i += from
		end := i + len(w)
		if (i == 0 || !isWordByte(lowerASCII(q[i-1], st.fold))) && (end == len(q) || !isWordByte(lowerASCII(q[end], st.fold))) {
			return true
		}
		from = i + 1
	}
	return false
}
