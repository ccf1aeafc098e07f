package running

// jobIDs gives every listed job a small number, the job's bit in the
// search index's bitsets, and takes it back when the job leaves, so that
// the numbers stay below the most jobs ever listed at once.
type jobIDs struct {
	next uint32
	free []uint32
}

func (ids *jobIDs) take() uint32 {
	if n := len(ids.free); n > 0 {
		id := ids.free[n-1]
		ids.free = ids.free[:n-1]
		return id
	}
	ids.next++
	return ids.next - 1
}

func (ids *jobIDs) give(id uint32) { ids.free = append(ids.free, id) }

// words returns how many 64-bit words a bitset of every id takes.
func (ids *jobIDs) words() int { return int(ids.next+63) / 64 }
