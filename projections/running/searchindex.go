package running

import (
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
)

// searchIndex finds the jobs whose search text holds a search term without
// reading their texts. It cuts each job's text into words, the longest runs
// of word bytes (letters, digits, _ and every byte of a non-ASCII
// character), and keeps every word of three bytes or more once, with the
// jobs whose text holds it and, by trigram, the words that hold each
// trigram. A term of three bytes or more with no other byte than word bytes
// can occur in a text only inside one of its words, so the jobs holding it
// are exactly those of the words that contain it: the words' trigrams
// narrow the words down, and a substring test on each of those few words
// decides. The index answers for the whole text, query text included; a
// caller who may not search a job's query text has that job's public text
// tested instead.
//
// The index is kept up to date as jobs are listed, changed and removed, under
// the store's lock; lookups only read it.
type searchIndex struct {
	ids   map[string]uint32     // word → its id
	words []indexedWord         // by id
	free  []uint32              // ids of words no job holds any more
	grams map[uint32]*gramWords // trigram → the words that contain it

	gens []uint32 // by word id: how many words the id named before its word

	scratch []string // the words of one text, while it is added or removed
	gs      []uint32 // the distinct trigrams of one word, while it is added or removed

	terms termCache // the words found for the terms searched lately
}

// gramWords is the words that contain one trigram, by id, in the order they
// were added. Most words come and go with one job (a job id, a generated
// table name), so a word's trigrams are added and forgotten at the rate jobs
// start and finish; keeping each trigram's words in a sorted set made that
// the costliest part of applying an event. Here a word is appended, and a
// word that goes is only counted out: its entries stay until more than half
// of a trigram's entries are stale, when compact drops them, at a cost that
// the departures since the last compaction have paid for. An entry is a
// word id and the id's generation (searchIndex.gens) when the word was
// added: it is stale once the id's generation moved on, which tells without
// reading the word.
type gramWords struct {
	words     []wordRef
	live      int    // entries not stale
	added     uint64 // entries ever appended
	compacted uint64 // times compact dropped entries
}

// wordRef is a word id (the low 32 bits) in one generation (the high 32).
type wordRef uint64

func (x *searchIndex) ref(id uint32) wordRef { return wordRef(x.gens[id])<<32 | wordRef(id) }

// word returns the id of r's word, and whether r is stale.
func (x *searchIndex) word(r wordRef) (id uint32, stale bool) {
	id = uint32(r)
	return id, x.gens[id] != uint32(r>>32)
}

// minCompacted is the fewest entries a trigram's words must have for
// compact to be worth calling: a shorter list is left with its stale
// entries until it empties or grows.
const minCompacted = 16

// indexedWord is one word and the jobs (by job id) whose text holds it.
type indexedWord struct {
	text string
	jobs idSet
}

// minIndexed is the length of the shortest term and word the index holds.
const minIndexed = 3

func newSearchIndex() *searchIndex {
	return &searchIndex{ids: map[string]uint32{}, grams: map[uint32]*gramWords{}}
}

// indexAll returns the index of texts, built at once: each word's jobs are
// gathered, then sorted into a set, rather than added to it one by one. The
// texts are cut into words by workers (see indexWorkers), each for a
// contiguous part of them; only the merge of their words is serial.
func indexAll(texts []jobText, workers int) *searchIndex {
	parts := make([]map[string][]uint32, max(1, min(workers, len(texts))))
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := p*len(texts)/len(parts), (p+1)*len(texts)/len(parts)
		wg.Go(func() { parts[p] = wordsOfTexts(texts[lo:hi]) })
	}
	wg.Wait()
	x := newSearchIndex()
	var jobs [][]uint32 // by word id
	for _, part := range parts {
		for w, js := range part {
			id, ok := x.ids[w]
			if !ok {
				w = strings.Clone(w)
				id = x.newWord(w)
				x.ids[w] = id
				x.words[id].text = w
				jobs = append(jobs, nil)
			}
			if jobs[id] == nil {
				jobs[id] = js // the first part's list is the word's list
			} else {
				jobs[id] = append(jobs[id], js...)
			}
		}
	}
	grams := map[uint32][]uint32{} // word ids, in increasing order
	for id, js := range jobs {
		slices.Sort(js)
		x.words[id].jobs = idSetOf(js)
		forTrigrams(x.words[id].text, func(g uint32) {
			if ws := grams[g]; len(ws) == 0 || ws[len(ws)-1] != uint32(id) { // a word may repeat a trigram
				grams[g] = append(ws, uint32(id))
			}
		})
	}
	x.gens = make([]uint32, len(x.words))
	for g, ws := range grams {
		refs := make([]wordRef, len(ws))
		for i, id := range ws {
			refs[i] = wordRef(id) // generation 0
		}
		x.grams[g] = &gramWords{words: refs, live: len(refs), added: uint64(len(refs))}
	}
	return x
}

// minIndexWorkerJobs is the fewest jobs worth a worker of indexAll.
const minIndexWorkerJobs = 5000

// indexWorkers is the number of workers for indexAll to cut n texts with:
// one per CPU, each for minIndexWorkerJobs jobs at least. A rebuild's index
// is built once the log's reads are done, when only the live feed runs
// beside it.
func indexWorkers(n int) int {
	return max(1, min(runtime.GOMAXPROCS(0), n/minIndexWorkerJobs))
}

// wordsOfTexts returns every word of texts with the ids of the jobs whose
// text holds it. The words are the texts' own substrings (or lower-cased
// copies): the caller clones those it keeps.
func wordsOfTexts(texts []jobText) map[string][]uint32 {
	var x searchIndex // for its scratch space
	words := map[string][]uint32{}
	for i := range texts {
		for _, w := range x.wordsOf(&texts[i].text) {
			words[w] = append(words[w], texts[i].id)
		}
	}
	return words
}

// isWordByte reports whether c belongs to a word: a lower-case letter, a
// digit, '_', or a byte of a non-ASCII character.
func isWordByte(c byte) bool {
	return c >= 0x80 || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_'
}

// indexable reports whether the index can answer for term t: it is long
// enough and has only word bytes.
func indexable(t string) bool {
	if len(t) < minIndexed {
		return false
	}
	for i := 0; i < len(t); i++ {
		if !isWordByte(t[i]) {
			return false
		}
	}
	return true
}

// add records that the job with id job has the search text st.
func (x *searchIndex) add(job uint32, st *searchText) {
	for _, w := range x.wordsOf(st) {
		x.addWord(job, w)
	}
}

// remove forgets that the job with id job has the search text st, which
// must be the text it was added with.
func (x *searchIndex) remove(job uint32, st *searchText) {
	for _, w := range x.wordsOf(st) {
		x.removeWord(job, w)
	}
}

// replace records that the job with id job now has the search text now
// instead of was, touching only the words that differ.
func (x *searchIndex) replace(job uint32, was, now *searchText) {
	if was.query == now.query && was.fold == now.fold {
		x.replacePublic(job, was, now)
		return
	}
	old := slices.Clone(x.wordsOf(was))
	cur := x.wordsOf(now)
	x.swapWords(job, old, cur)
}

// replacePublic is replace when only the public part changed, as it does
// when a job's tables or labels become known: the query text, often the
// longest part, is not cut into words again, only searched for the few
// words that differ.
func (x *searchIndex) replacePublic(job uint32, was, now *searchText) {
	old := slices.Compact(slices.Sorted(slices.Values(appendWords(nil, was.public, false))))
	cur := slices.Compact(slices.Sorted(slices.Values(appendWords(nil, now.public, false))))
	keep := func(ws []string, other []string) []string {
		out := ws[:0]
		for _, w := range ws {
			if _, found := slices.BinarySearch(other, w); !found && !now.queryHasWord(w) {
				out = append(out, w)
			}
		}
		return out
	}
	gone, added := keep(slices.Clone(old), cur), keep(slices.Clone(cur), old)
	x.swapWords(job, gone, added)
}

// swapWords removes from the index the words of old that cur lacks and adds
// those of cur that old lacks, for the job with id job; both are sorted.
func (x *searchIndex) swapWords(job uint32, old, cur []string) {
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		switch {
		case j == len(cur) || i < len(old) && old[i] < cur[j]:
			x.removeWord(job, old[i])
			i++
		case i == len(old) || cur[j] < old[i]:
			x.addWord(job, cur[j])
			j++
		default:
			i, j = i+1, j+1
		}
	}
}

// wordsOf returns the distinct words of st of at least minIndexed bytes,
// lower-cased, in x.scratch: they alias st's strings, or a lower-cased copy
// of a folded word, so a word kept must be cloned.
func (x *searchIndex) wordsOf(st *searchText) []string {
	ws := x.scratch[:0]
	ws = appendWords(ws, st.public, false)
	ws = appendWords(ws, st.query, st.fold)
	slices.Sort(ws)
	ws = slices.Compact(ws)
	x.scratch = ws
	return ws
}

// appendWords appends the words of s of at least minIndexed bytes, as
// strings.ToLower(s) has them when fold is set (s is then ASCII).
func appendWords(ws []string, s string, fold bool) []string {
	for i := 0; i < len(s); {
		if !isWordByte(lowerASCII(s[i], fold)) {
			i++
			continue
		}
		j := i + 1
		for j < len(s) && isWordByte(lowerASCII(s[j], fold)) {
			j++
		}
		if j-i >= minIndexed {
			w := s[i:j]
			if fold && hasUpper(w) {
				w = strings.ToLower(w)
			}
			ws = append(ws, w)
		}
		i = j
	}
	return ws
}

func lowerASCII(c byte, fold bool) byte {
	if fold && 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

func (x *searchIndex) addWord(job uint32, w string) {
	id, ok := x.ids[w]
	if !ok {
		w = strings.Clone(w)
		id = x.newWord(w)
		x.ids[w] = id
		x.words[id] = indexedWord{text: w, jobs: idSet{small: []uint32{job}}}
		for _, g := range x.distinctTrigrams(w) {
			gw := x.grams[g]
			if gw == nil {
				gw = &gramWords{}
				x.grams[g] = gw
			}
			gw.words = append(gw.words, x.ref(id))
			gw.live++
			gw.added++
		}
		return
	}
	x.words[id].jobs.add(job)
}

func (x *searchIndex) newWord(w string) uint32 {
	if n := len(x.free); n > 0 {
		id := x.free[n-1]
		x.free = x.free[:n-1]
		return id
	}
	x.words = append(x.words, indexedWord{})
	x.gens = append(x.gens, 0)
	return uint32(len(x.words) - 1)
}

func (x *searchIndex) removeWord(job uint32, w string) {
	id, ok := x.ids[w]
	if !ok {
		return
	}
	iw := &x.words[id]
	if iw.jobs.remove(job); !iw.jobs.empty() {
		return
	}
	// The word is gone (its jobs are empty): count it out of its trigrams.
	for _, g := range x.distinctTrigrams(iw.text) {
		gw := x.grams[g]
		switch gw.live--; {
		case gw.live == 0:
			delete(x.grams, g)
		case len(gw.words) >= minCompacted && 2*gw.live < len(gw.words):
			x.compact(gw, id)
		}
	}
	delete(x.ids, iw.text)
	*iw = indexedWord{}
	x.gens[id]++
	x.free = append(x.free, id)
}

// compact drops the stale entries of gw, and those of the word with id
// gone, which is going.
func (x *searchIndex) compact(gw *gramWords, gone uint32) {
	kept := gw.words[:0]
	for _, r := range gw.words {
		if id, stale := x.word(r); !stale && id != gone {
			kept = append(kept, r)
		}
	}
	if cap(kept) > 4*len(kept) {
		kept = slices.Clone(kept)
	}
	gw.words = kept
	gw.compacted++
}

// distinctTrigrams returns the trigrams of w, each once, in x.gs.
func (x *searchIndex) distinctTrigrams(w string) []uint32 {
	gs := x.gs[:0]
	forTrigrams(w, func(g uint32) { gs = append(gs, g) })
	slices.Sort(gs)
	gs = slices.Compact(gs)
	x.gs = gs
	return gs
}

// forTrigrams calls f with each trigram of s, as a number.
func forTrigrams(s string, f func(uint32)) {
	for i := 0; i+minIndexed <= len(s); i++ {
		f(uint32(s[i])<<16 | uint32(s[i+1])<<8 | uint32(s[i+2]))
	}
}

// jobsWith sets in bits (a bit per job id, all clear, long enough for
// every id given) the jobs whose text holds t, an indexable term: the jobs
// of the words that contain it, found among the words of its rarest
// trigram. When those are many, the words of its next two rarest trigrams
// are marked in a bitset first, so that only the words with all three are
// read: reading a word costs two cache misses, marking one a few
// nanoseconds. When they are that many, the words found are remembered
// for the next search of t (termCache).
func (x *searchIndex) jobsWith(t string, bits []uint64) {
	var lists []*gramWords
	missing := false
	forTrigrams(t, func(g uint32) {
		gw, ok := x.grams[g]
		if !ok {
			missing = true
			return
		}
		lists = append(lists, gw)
	})
	if missing || len(lists) == 0 {
		return // no word holds one of t's trigrams: no text holds t
	}
	slices.SortFunc(lists, func(a, b *gramWords) int { return len(a.words) - len(b.words) })
	rarest := lists[0]
	var shared []*roaring.Bitmap
	var small []*idSet
	gather := func(id uint32) {
		if iw := &x.words[id]; iw.jobs.big != nil {
			shared = append(shared, iw.jobs.big)
		} else {
			small = append(small, &iw.jobs)
		}
	}
	if len(rarest.words) < minRemembered {
		x.wordsWith(t, lists, func(r wordRef) { gather(uint32(r)) })
	} else {
		x.terms.wordsWith(x, t, lists, gather)
	}
	switch len(shared) {
	case 0:
	case 1:
		shared[0].WriteDenseTo(bits) // bits are clear: it may copy whole words
	default:
		roaring.FastOr(shared...).WriteDenseTo(bits)
	}
	for _, set := range small {
		for _, j := range set.small {
			bits[j>>6] |= 1 << (j & 63)
		}
	}
}

// wordsWith calls found with each word that contains t, among the words of
// the rarest of t's trigrams (lists, sorted by length).
func (x *searchIndex) wordsWith(t string, lists []*gramWords, found func(wordRef)) {
	rarest := lists[0]
	var others *[]uint64 // by word id: the words of lists[1:3]
	if len(lists) > 1 && len(rarest.words) > minPrefiltered {
		others = x.wordsOfAll(lists[1:min(3, len(lists))])
		defer bitsPool.Put(others)
	}
	for _, r := range rarest.words {
		id, stale := x.word(r)
		if stale || others != nil && (*others)[id>>6]&(1<<(id&63)) == 0 {
			continue
		}
		if strings.Contains(x.words[id].text, t) { // not another word with the trigram
			found(r)
		}
	}
}

// minPrefiltered is the fewest words of a term's rarest trigram worth
// marking the words of its other trigrams for (BenchmarkList).
const minPrefiltered = 256

// wordsOfAll returns a bitset, by word id, of the words in every one of
// lists (stale entries included: the words are tested for the term after).
func (x *searchIndex) wordsOfAll(lists []*gramWords) *[]uint64 {
	n := (len(x.words) + 63) / 64
	all := takeBits(n)
	for i, gw := range lists {
		if i == 0 {
			for _, r := range gw.words {
				id := uint32(r)
				(*all)[id>>6] |= 1 << (id & 63)
			}
			continue
		}
		more := takeBits(n)
		for _, r := range gw.words {
			id := uint32(r)
			(*more)[id>>6] |= 1 << (id & 63)
		}
		for k, w := range *more {
			(*all)[k] &= w
		}
		bitsPool.Put(more)
	}
	return all
}
