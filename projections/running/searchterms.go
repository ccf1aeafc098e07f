package running

import (
	"strings"
	"sync"
)

// termCache remembers, for the terms searched lately, which words of the
// index contain each, so that a term searched again (the web UI asks for
// the same list every few seconds while a search is open) tests only the
// words added since, not every word of its rarest trigram: those substring
// tests were the costliest part of finding a common term's jobs
// (BenchmarkListHTTP, 100,000 jobs).
//
// A term's words are those of one trigram's list (gramWords) that contain
// it, found up to the list's entry count then (added). The list only grows
// until it is compacted, so the words added since are its last entries;
// words gone since are stale by their generation and skipped. A compaction
// moves entries, and a list that emptied is replaced: either makes the
// term's words be found again in full.
//
// Lookups run under the store's read lock, many at once, so the cache has
// a lock of its own; the index changes only under the store's write lock,
// when no lookup runs.
type termCache struct {
	mu    sync.Mutex
	terms map[string]*termWords
}

// termWords is what the cache knows of one term.
type termWords struct {
	list      *gramWords // the trigram list its words were found in
	added     uint64     // list.added when they were last brought up to date
	compacted uint64     // list.compacted then
	words     []wordRef  // the words of list that contain the term
}

// maxRemembered is the most terms the cache keeps; past it, a new term
// takes the place of an arbitrary one.
const maxRemembered = 256

// maxRememberedWords is the most words a term may contain for the cache to
// remember them: a term that most jobs hold costs as much to gather as to
// find.
const maxRememberedWords = 4096

// minRemembered is the fewest entries a term's rarest trigram list must
// have for its words to be remembered: below it, finding them costs little.
const minRemembered = minPrefiltered

// wordsWith calls found with the id of each word of x that contains t,
// whose trigrams' lists are lists, the rarest first.
func (c *termCache) wordsWith(x *searchIndex, t string, lists []*gramWords, found func(id uint32)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tw := c.terms[t]
	if tw == nil || tw.compacted != tw.list.compacted || !x.holds(tw.list, t) {
		if c.terms == nil {
			c.terms = map[string]*termWords{}
		}
		if tw == nil && len(c.terms) >= maxRemembered {
			for k := range c.terms {
				delete(c.terms, k)
				break
			}
		}
		tw = &termWords{list: lists[0], added: lists[0].added, compacted: lists[0].compacted}
		x.wordsWith(t, lists, func(r wordRef) { tw.words = append(tw.words, r) })
		if len(tw.words) <= maxRememberedWords {
			c.terms[strings.Clone(t)] = tw
		} else {
			delete(c.terms, t)
		}
	} else if n := tw.list.added - tw.added; n > 0 {
		for _, r := range tw.list.words[len(tw.list.words)-int(n):] {
			if id, stale := x.word(r); !stale && strings.Contains(x.words[id].text, t) {
				tw.words = append(tw.words, r)
			}
		}
		tw.added = tw.list.added
		if len(tw.words) > maxRememberedWords {
			delete(c.terms, t)
		}
	}
	kept := tw.words[:0]
	for _, r := range tw.words {
		if id, stale := x.word(r); !stale {
			kept = append(kept, r)
			found(id)
		}
	}
	clear(tw.words[len(kept):])
	tw.words = kept
}

// holds reports whether list is still the index's list of one of t's
// trigrams: a list that empties is dropped, and a new one made if the
// trigram comes back. (A remembered list is compacted on its way to
// empty, as long as minCompacted is below minRemembered; this check does
// not rely on it.)
func (x *searchIndex) holds(list *gramWords, t string) bool {
	held := false
	forTrigrams(t, func(g uint32) { held = held || x.grams[g] == list })
	return held
}
