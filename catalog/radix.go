package catalog

import "slices"

// radixSort sorts keys in place: an LSD radix sort over bytes, skipping the byte positions
// where all keys agree (common for small ranges). Much faster than a comparison sort for the
// millions of keys of a large column; it needs a scratch buffer of the same size, kept in
// *scratch for reuse.
func radixSort(keys []uint64, scratch *[]uint64) {
	if len(keys) < 256 {
		slices.Sort(keys)
		return
	}
	var counts [8][256]int
	for _, k := range keys {
		for b := range 8 {
			counts[b][byte(k>>(8*b))]++
		}
	}
	if cap(*scratch) < len(keys) {
		*scratch = make([]uint64, len(keys))
	}
	buf := (*scratch)[:len(keys)]
	src, dst := keys, buf
	for b := range 8 {
		c := &counts[b]
		if c[byte(keys[0]>>(8*b))] == len(keys) {
			continue // every key has the same byte here
		}
		pos := 0
		for i, n := range c {
			c[i] = pos
			pos += n
		}
		shift := 8 * b
		for _, k := range src {
			d := byte(k >> shift)
			dst[c[d]] = k
			c[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &keys[0] {
		copy(keys, src)
	}
}
