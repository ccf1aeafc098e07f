package running

// signature is a 512-bit Bloom filter of the byte pairs of a job's search
// text. A search word can occur in the text only if every pair of adjacent
// bytes of the word is in the text's signature, so a list request tests the
// signatures, which sit in a dense slice, and reads the text itself (a
// cache miss per job) only for the few jobs whose signature passes.
type signature [8]uint64

// signatureOf returns the signature of the byte pairs of s.
func signatureOf(s string) signature {
	var sig signature
	sig.addPairs(s)
	return sig
}

func (sig *signature) addPairs(s string) {
	for i := 0; i+1 < len(s); i++ {
		h := (uint32(s[i])<<8 | uint32(s[i+1])) * 0x9E3779B1 >> 23 // 9 bits
		sig[h>>6] |= 1 << (h & 63)
	}
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
