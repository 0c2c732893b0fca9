package catalog

import (
	"math/bits"
	"slices"
)

// lsdMax is the largest slice sorted by the LSD pass, whose scratch buffer is as large as the
// slice: 64 Ki keys (512 KiB) fit in the caches.
const lsdMax = 1 << 16

// radixSort sorts keys in place. Large slices are split in place by their most significant
// varying byte (an American flag sort) until the pieces are small, and each piece is then
// sorted by a least-significant-byte radix sort through a scratch buffer of at most lsdMax
// keys, kept in *scratch for reuse. So sorting a column of n keys needs 8n bytes (the keys),
// not 16n: half the profiler's memory on large tables.
func radixSort(keys []uint64, scratch *[]uint64) {
	if len(keys) < 2 {
		return
	}
	var diff uint64
	for _, k := range keys {
		diff |= k ^ keys[0]
	}
	if diff == 0 {
		return // all equal
	}
	msdSort(keys, (63-bits.LeadingZeros64(diff))&^7, scratch)
}

// msdSort sorts keys, which agree on every byte above shift.
func msdSort(keys []uint64, shift int, scratch *[]uint64) {
	if len(keys) <= lsdMax {
		lsdSort(keys, shift, scratch)
		return
	}
	var counts [256]int
	for _, k := range keys {
		counts[byte(k>>shift)]++
	}
	var next, ends [256]int
	pos := 0
	for b, n := range counts {
		next[b] = pos
		pos += n
		ends[b] = pos
	}
	// Move each key to its bucket, following cycles: every key is moved once.
	for b := range 256 {
		for next[b] < ends[b] {
			k := keys[next[b]]
			for d := byte(k >> shift); int(d) != b; d = byte(k >> shift) {
				keys[next[d]], k = k, keys[next[d]]
				next[d]++
			}
			keys[next[b]] = k
			next[b]++
		}
	}
	if shift == 0 {
		return
	}
	start := 0
	for _, end := range ends {
		if end-start > 1 {
			msdSort(keys[start:end], shift-8, scratch)
		}
		start = end
	}
}

// lsdSort sorts keys, which agree on every byte above shift, byte by byte from the least
// significant, skipping the bytes where all keys agree.
func lsdSort(keys []uint64, shift int, scratch *[]uint64) {
	if len(keys) < 256 {
		slices.Sort(keys)
		return
	}
	passes := shift/8 + 1
	var counts [8][256]int
	for _, k := range keys {
		for b := range passes {
			counts[b][byte(k>>(8*b))]++
		}
	}
	if cap(*scratch) < len(keys) {
		*scratch = make([]uint64, min(max(len(keys), 4096), lsdMax))
	}
	src, dst := keys, (*scratch)[:len(keys)]
	for b := range passes {
		c := &counts[b]
		if c[byte(keys[0]>>(8*b))] == len(keys) {
			continue // every key has the same byte here
		}
		pos := 0
		for i, n := range c {
			c[i] = pos
			pos += n
		}
		s := 8 * b
		for _, k := range src {
			d := byte(k >> s)
			dst[c[d]] = k
			c[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &keys[0] {
		copy(keys, src)
	}
}
