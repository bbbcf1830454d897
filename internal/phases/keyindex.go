package phases

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/inlet-dev/inlet/internal/pipeline"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/rows"
)

// keyIndex answers, for a key value of a whole file, how many rows hold it
// and which holds it first, in memory bounded by the values more than one
// row holds, not by the file: profiled at 10M rows, a map of every key value
// was 2.7 GB. The values are counted on disk: each batch's key hashes are
// spilled into partitions by hash, and each partition, a fraction of the
// file, is sorted and counted on its own. Only a value held by several rows
// is kept; any other value is held by the one row that asks about it.
type keyIndex struct {
	dups map[keyHash]keySeen
	// members, when kept (membership questions: is this id in the file?),
	// is every partition sorted on disk with a sparse index over it.
	members *memberSet
}

type keyHash [16]byte

type keySeen struct {
	first int64 // row number of the first row holding the key value
	count int32
}

func hashKey(name, value string) keyHash { return pipeline.KeyHash(name, value) }

// none reports whether no two rows hold the same value.
func (k *keyIndex) none() bool { return len(k.dups) == 0 }

// get is what the file holds of a key value that row holds.
func (k *keyIndex) get(name, value string, row int64) keySeen {
	if s, ok := k.dups[hashKey(name, value)]; ok {
		return s
	}
	return keySeen{first: row, count: 1}
}

const (
	spillPartitions = 64
	spillEntry      = pipeline.KeySummaryEntry // hash, row
)

// memPerPartition is what a partition holds before it goes to disk: 16 MiB
// in all, so a small import's scans never touch a file (a var for tests).
var memPerPartition = 256 << 10

// countKeys counts the keys fn gives for each row of every input batch of
// w: from the batch's key summary when the previous phase wrote one (which
// must then hold exactly what fn gives for each of its rows), else from its
// rows, of which fn sees only Num, ID, Op and the fields of Data named.
// Batches are read several at once. With members, the index also answers
// contains (and keeps its partitions on disk until close).
func countKeys(ctx context.Context, w pipeline.Work, fields []string, members bool, fn func(r *rows.Row, add func(name, value string))) (*keyIndex, error) {
	sp, err := newKeySpill(w.TempDir())
	if err != nil {
		return nil, err
	}
	err = w.Scan(ctx, func(b int, in pipeline.Input) error {
		var batch spillBatch
		sum, ok, err := in.Keys(ctx)
		if err != nil {
			return err
		}
		if ok {
			batch.addSummary(sum)
			return sp.write(&batch)
		}
		in.Only(fields...)
		err = in.ForEach(func(r *rows.Row) error {
			fn(r, func(name, value string) { batch.add(hashKey(name, value), r.Num) })
			return nil
		})
		if err != nil {
			return err
		}
		return sp.write(&batch)
	})
	if err != nil {
		sp.discard()
		return nil, err
	}
	return sp.index(members)
}

// The whole-file counts, each defined once for the phase that summarizes
// its batches and the phase that counts them.

// fileKeys gives every key value a row's data holds (preparsing's count,
// summarized by prevalidation).
func fileKeys(res *resources.Resource, data map[string]any, add func(name, value string)) {
	res.EachKeyValue(data, add)
}

// recordIDKey names a row's record id in a count (parsing's and cleanup's,
// summarized by transforming and processing).
const recordIDKey = "id"

func recordID(r *rows.Row, add func(name, value string)) { add(recordIDKey, r.ID) }

// keySpill is the partitions key hashes are spilled to while a file is scanned.
type keySpill struct {
	dir   string
	parts [spillPartitions]*spillPart
}

// spillBatch is one batch's entries by partition, written under one lock each.
type spillBatch [spillPartitions][]byte

func (b *spillBatch) add(h keyHash, row int64) {
	p := h[0] % spillPartitions
	b[p] = binary.LittleEndian.AppendUint64(append(b[p], h[:]...), uint64(row))
}

// addSummary adds a batch's key summary, entry by entry, to its partitions.
func (b *spillBatch) addSummary(sum pipeline.KeySummary) {
	for len(sum) >= spillEntry {
		p := sum[0] % spillPartitions
		b[p] = append(b[p], sum[:spillEntry]...)
		sum = sum[spillEntry:]
	}
}

func newKeySpill(tempDir string) (*keySpill, error) {
	dir, err := os.MkdirTemp(tempDir, "keys-*")
	if err != nil {
		return nil, err
	}
	s := &keySpill{dir: dir}
	for i := range s.parts {
		s.parts[i] = &spillPart{path: filepath.Join(dir, fmt.Sprintf("p%02d", i))}
	}
	return s, nil
}

func (s *keySpill) write(b *spillBatch) error {
	for i, entries := range b {
		if len(entries) == 0 {
			continue
		}
		if err := s.parts[i].write(entries); err != nil {
			return err
		}
	}
	return nil
}

func (s *keySpill) discard() {
	for _, p := range s.parts {
		if p != nil && p.f != nil {
			p.f.Close()
		}
	}
	os.RemoveAll(s.dir)
}

// index counts the spilled partitions one at a time.
func (s *keySpill) index(members bool) (*keyIndex, error) {
	idx := &keyIndex{dups: map[keyHash]keySeen{}}
	if members {
		idx.members = &memberSet{dir: s.dir}
	}
	for i, p := range s.parts {
		entries, err := p.contents()
		if err == nil {
			err = idx.countPartition(i, entries)
		}
		if err != nil {
			idx.close()
			s.discard()
			return nil, err
		}
		if p.f != nil {
			p.f.Close()
			os.Remove(p.path)
		}
	}
	if !members {
		os.RemoveAll(s.dir)
	}
	return idx, nil
}

type spillPart struct {
	mu   sync.Mutex
	path string
	mem  []byte   // entries not on disk
	f    *os.File // nil until the partition outgrows memPerPartition
	w    *bufio.Writer
}

func (p *spillPart) write(b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f == nil {
		if len(p.mem)+len(b) <= memPerPartition {
			p.mem = append(p.mem, b...)
			return nil
		}
		f, err := os.Create(p.path)
		if err != nil {
			return err
		}
		p.f, p.w = f, bufio.NewWriterSize(f, 32<<10)
		if _, err := p.w.Write(p.mem); err != nil {
			return err
		}
		p.mem = nil
	}
	_, err := p.w.Write(b)
	return err
}

// contents is every entry of the partition.
func (p *spillPart) contents() ([]byte, error) {
	if p.f == nil {
		return p.mem, nil
	}
	if err := p.w.Flush(); err != nil {
		return nil, err
	}
	size, err := p.f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	if _, err := p.f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf, nil
}

// countPartition sorts one partition's entries, keeps the values held more
// than once and, for membership, writes the distinct hashes back sorted.
func (k *keyIndex) countPartition(i int, buf []byte) error {
	n := len(buf) / spillEntry
	type spilled struct {
		h   keyHash
		row int64
	}
	entries := make([]spilled, n)
	for j := range entries {
		e := buf[j*spillEntry:]
		copy(entries[j].h[:], e[:16])
		entries[j].row = int64(binary.LittleEndian.Uint64(e[16:]))
	}
	buf = nil
	slices.SortFunc(entries, func(a, b spilled) int { return bytes.Compare(a.h[:], b.h[:]) })
	var distinct []byte
	for j := 0; j < n; {
		h := entries[j].h
		s := keySeen{first: entries[j].row}
		for ; j < n && entries[j].h == h; j++ {
			s.count++
			s.first = min(s.first, entries[j].row)
		}
		if s.count > 1 {
			k.dups[h] = s
		}
		if k.members != nil {
			distinct = append(distinct, h[:]...)
		}
	}
	if k.members == nil {
		return nil
	}
	return k.members.add(i, distinct)
}

// memberSet is every distinct hash, sorted, one file per partition, with
// every memberStride-th hash in memory: a lookup reads one block.
type memberSet struct {
	dir    string
	sparse [spillPartitions][]keyHash
	counts [spillPartitions]int
	files  [spillPartitions]*os.File
	mem    [spillPartitions][]byte // a partition small enough to stay in memory
}

const memberStride = 256

func (m *memberSet) add(i int, sorted []byte) error {
	m.counts[i] = len(sorted) / 16
	if len(sorted) <= memPerPartition {
		m.mem[i] = sorted
		return nil
	}
	name := filepath.Join(m.dir, fmt.Sprintf("m%02d", i))
	if err := os.WriteFile(name, sorted, 0o600); err != nil {
		return err
	}
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	m.files[i] = f
	for j := 0; j < m.counts[i]; j += memberStride {
		var h keyHash
		copy(h[:], sorted[j*16:])
		m.sparse[i] = append(m.sparse[i], h)
	}
	return nil
}

// contains reports whether the file holds the key value.
func (k *keyIndex) contains(name, value string) (bool, error) {
	m := k.members
	h := hashKey(name, value)
	p := h[0] % spillPartitions
	if m.files[p] == nil {
		return searchSorted(m.mem[p], h), nil
	}
	sp := m.sparse[p]
	// The block that may hold h starts at the last sparse entry <= h.
	blk, found := slices.BinarySearchFunc(sp, h, func(a, b keyHash) int { return bytes.Compare(a[:], b[:]) })
	if found {
		return true, nil
	}
	if blk == 0 {
		return false, nil
	}
	blk--
	from := blk * memberStride
	to := min(from+memberStride, m.counts[p])
	buf := make([]byte, (to-from)*16)
	if _, err := m.files[p].ReadAt(buf, int64(from)*16); err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return searchSorted(buf, h), nil
}

// searchSorted reports whether sorted, 16-byte hashes in order, holds h.
func searchSorted(sorted []byte, h keyHash) bool {
	lo, hi := 0, len(sorted)/16
	for lo < hi {
		mid := (lo + hi) / 2
		switch c := bytes.Compare(sorted[mid*16:mid*16+16], h[:]); {
		case c == 0:
			return true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return false
}

// close removes what the index kept on disk.
func (k *keyIndex) close() {
	if k.members == nil {
		return
	}
	for _, f := range k.members.files {
		if f != nil {
			f.Close()
		}
	}
	os.RemoveAll(k.members.dir)
}
