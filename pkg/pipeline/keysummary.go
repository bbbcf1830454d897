package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/inlet-dev/inlet/pkg/blob"
	"github.com/inlet-dev/inlet/pkg/imports"
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

// SummarizeKey adds a key value of a row this output emits to the batch's
// summary. A summary must hold every key value the next phase counts of
// every emitted row, or none at all (then the next phase reads the rows).
func (o *Output) SummarizeKey(name, value string, row int64) { o.keys.Add(name, value, row) }

// Summarize adds the summary of the row just emitted to its batch's.
func (s *Splitter) Summarize(keys KeySummary) { s.cur.keys = append(s.cur.keys, keys...) }

// Keys reads the summary the previous phase wrote with this batch; ok is
// false when it wrote none (then the rows are to be read).
func (in *Input) Keys(ctx context.Context) (sum KeySummary, ok bool, err error) {
	rc, err := in.h.Env.Blobs.Get(ctx, in.keysKey)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("open key summary %s: %w", in.keysKey, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, false, fmt.Errorf("read key summary %s: %w", in.keysKey, err)
	}
	if len(b)%KeySummaryEntry != 0 {
		return nil, false, fmt.Errorf("key summary %s: %d bytes, not whole entries", in.keysKey, len(b))
	}
	return b, true, nil
}

// commitKeys stores the batch's key summary, if it has one; before the
// stats, like the rows: a redelivery writes the same bytes again.
func (o *Output) commitKeys(ctx context.Context) error {
	if len(o.keys) == 0 || o.noSummary {
		return nil
	}
	return o.h.Env.Blobs.Put(ctx, imports.KeysKey(o.job.ID(), o.phase, o.batch), bytes.NewReader(o.keys), int64(len(o.keys)))
}
