package pipeline

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// trimBatch bounds the work of one transaction so that trimming never stalls publishers.
const trimBatch = 5000

// Trim deletes messages published before cutoff that every consumer group of their topic has
// acked (a topic nobody consumes, such as a poison topic, keeps messages until cutoff only).
// bbolt reuses the freed pages, so a log under steady load stops growing; CompactFile shrinks
// the file itself.
func (ps *BoltPubSub) Trim(cutoff time.Time) (deleted int, err error) {
	topics, err := ps.Topics()
	if err != nil {
		return 0, err
	}
	for _, topic := range topics {
		for {
			n, more, err := ps.trimTopic(topic, cutoff)
			deleted += n
			if err != nil {
				return deleted, fmt.Errorf("trim %s: %w", topic, err)
			}
			if !more {
				break
			}
		}
	}
	return deleted, nil
}

func (ps *BoltPubSub) trimTopic(topic string, cutoff time.Time) (n int, more bool, err error) {
	err = ps.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTopics).Bucket([]byte(topic))
		if b == nil {
			return nil
		}
		limit := ^uint64(0)
		for _, off := range groupsOf(tx, topic) {
			limit = min(limit, off)
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.First() {
			if binary.BigEndian.Uint64(k) > limit {
				return nil
			}
			if t, ok := recordTime(v); ok && !t.Before(cutoff) {
				return nil
			}
			if n == trimBatch {
				more = true
				return nil
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, more, err
}

// CompactFile rewrites the bbolt file at src into dst without free pages. Both paths must be
// closed databases; dst must not exist.
func CompactFile(src, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("compact: %s already exists", dst)
	}
	from, err := bolt.Open(src, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("compact: open %s: %w", src, err)
	}
	defer from.Close()
	to, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	if err := bolt.Compact(to, from, 64<<20); err != nil {
		to.Close()
		os.Remove(dst)
		return fmt.Errorf("compact: %w", err)
	}
	return to.Close()
}
