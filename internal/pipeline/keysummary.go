package pipeline

import (
	"crypto/sha256"
	"encoding/binary"
)

// KeySummary is the key values a batch's rows hold, hashed: what a
// whole-file count in the next phase (duplicate keys, the ids rows resolve
// to) needs of the batch. The phase writing the batch has every row in hand
// and summarizes it as it goes; the summary is committed with the batch, and
// the counting phase reads a few bytes a row instead of every row (profiled
// at 1M rows: preparsing's scan of every row was 3–4 s on the critical path,
// between prevalidation's end and any other work).
//
// It is a run of entries: the 16-byte KeyHash of a key value, then the row
// number (8 bytes, little-endian).
type KeySummary []byte

// KeySummaryEntry is the size of one entry.
const KeySummaryEntry = 16 + 8

// KeyHash identifies a key value (a key's name and value) in a summary.
func KeyHash(name, value string) [16]byte {
	sum := sha256.Sum256([]byte(name + "\x00" + value))
	var h [16]byte
	copy(h[:], sum[:16])
	return h
}

// Add notes that row holds name's value.
func (s *KeySummary) Add(name, value string, row int64) {
	h := KeyHash(name, value)
	*s = binary.LittleEndian.AppendUint64(append(*s, h[:]...), uint64(row))
}

// Summarize adds the summary of the row just emitted to its batch's.
func (s *Splitter) Summarize(keys KeySummary) { s.cur.keys = append(s.cur.keys, keys...) }
