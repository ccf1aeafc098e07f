package running

// samePtr reports whether two optional values are both unknown or both
// known and equal.
func samePtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
