package pipeline

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// A stored message: format byte, publish time, uuid, metadata pairs, payload; lengths as uvarints.
const recordFormat = 1

var errCorruptRecord = errors.New("pipeline: corrupt log record")

// Record is one message as kept in the log.
type Record struct {
	Topic    string
	Seq      uint64
	Time     time.Time
	UUID     string
	Metadata message.Metadata
	Payload  []byte
}

func encodeRecord(t time.Time, m *message.Message) []byte {
	n := 1 + binary.MaxVarintLen64*3 + len(m.UUID) + len(m.Payload)
	for k, v := range m.Metadata {
		n += 2*binary.MaxVarintLen64 + len(k) + len(v)
	}
	b := make([]byte, 0, n)
	b = append(b, recordFormat)
	b = binary.AppendVarint(b, t.UnixNano())
	b = appendBytes(b, []byte(m.UUID))
	b = binary.AppendUvarint(b, uint64(len(m.Metadata)))
	for k, v := range m.Metadata {
		b = appendBytes(b, []byte(k))
		b = appendBytes(b, []byte(v))
	}
	return appendBytes(b, m.Payload)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func decodeRecord(topic string, seq uint64, b []byte) (Record, error) {
	r := Record{Topic: topic, Seq: seq}
	if len(b) == 0 || b[0] != recordFormat {
		return r, errCorruptRecord
	}
	d := decoder{b: b[1:]}
	r.Time = time.Unix(0, d.varint()).UTC()
	r.UUID = string(d.bytes())
	count := d.uvarint()
	if count > uint64(len(d.b)) {
		return r, errCorruptRecord
	}
	r.Metadata = make(message.Metadata, count)
	for i := uint64(0); i < count; i++ {
		k := string(d.bytes())
		r.Metadata[k] = string(d.bytes())
	}
	r.Payload = append([]byte(nil), d.bytes()...)
	if d.err {
		return r, errCorruptRecord
	}
	return r, nil
}

// recordTime reads only the publish time, for retention scans.
func recordTime(b []byte) (time.Time, bool) {
	if len(b) < 2 || b[0] != recordFormat {
		return time.Time{}, false
	}
	ns, n := binary.Varint(b[1:])
	return time.Unix(0, ns), n > 0
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}
