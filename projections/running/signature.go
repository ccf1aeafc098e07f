package running

// signature is a 512-bit Bloom filter of the byte pairs of a job's search
// text. A search word can occur in the text only if every pair of adjacent
// bytes of the word is in the text's signature, so a list request tests the
// signatures, which sit in a dense slice, and reads the text itself (a
// cache miss per job) only for the few jobs whose signature passes.
type signature [8]uint64

// signatureOf returns the signature of the byte pairs of the whole search
// text, the public part followed by the lower-cased query text.
func signatureOf(st *searchText) signature {
	var sig signature
	sig.addPairs(st.public)
	if len(st.query) == 0 {
		return sig
	}
	prev, have := byte(0), len(st.public) > 0
	if have {
		prev = st.public[len(st.public)-1]
	}
	for i := 0; i < len(st.query); i++ {
		c := lowerASCII(st.query[i], st.fold)
		if have {
			sig.addPair(prev, c)
		}
		prev, have = c, true
	}
	return sig
}

func (sig *signature) addPairs(s string) {
	for i := 0; i+1 < len(s); i++ {
		sig.addPair(s[i], s[i+1])
	}
}

func (sig *signature) addPair(a, b byte) {
	h := (uint32(a)<<8 | uint32(b)) * 0x9E3779B1 >> 23 // 9 bits
	sig[h>>6] |= 1 << (h & 63)
}

// covers reports whether every bit of want is set in sig.
func (sig *signature) covers(want *signature) bool {
	for i := range sig {
		if sig[i]&want[i] != want[i] {
			return false
		}
	}
	return true
}
