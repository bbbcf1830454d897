package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/rows"
)

// MemoryWork is Work over batches held in memory, with no broker and no blob
// store: a phase's unit test runs the phase over rows and reads back what it
// committed. Batches are committed as in a service (a batch committed once
// is not produced again), and nothing follows them.
type MemoryWork struct {
	*work
	store *memoryBatches
}

// NewMemoryWork is the work of phase over every batch of input, the rows the
// phase before it passed on (one slice a batch). Temporary files go to tempDir.
func NewMemoryWork(job *Job, phase, tempDir string, input ...[]rows.Row) (*MemoryWork, error) {
	i := flowIndex(phase)
	if i <= 0 {
		return nil, fmt.Errorf("phase %q has no input batches", phase)
	}
	if job.Batches != len(input) {
		return nil, fmt.Errorf("job has %d batches, input %d", job.Batches, len(input))
	}
	store := &memoryBatches{batches: map[string]*memoryBatch{}}
	prev := Flow[i-1].Phase
	batches := make([]int, len(input))
	for b, batch := range input {
		var buf bytes.Buffer
		w := rows.NewRowWriter(&buf)
		for r := range batch {
			if err := w.Write(&batch[r]); err != nil {
				return nil, err
			}
		}
		if err := w.Flush(); err != nil {
			return nil, err
		}
		store.batches[memoryKey(prev, b)] = &memoryBatch{rows: buf.Bytes(), committed: true,
			stats: events.BatchProgress{Phase: prev, Batch: b, RowsIn: int64(len(batch)), RowsOut: int64(len(batch))}}
		batches[b] = b
	}
	h := New(&Env{TempDir: tempDir, Log: zerolog.Nop()})
	return &MemoryWork{work: h.newWork(store, job, phase, batches), store: store}, nil
}

// Interrupt asks the import to stop: batches not yet produced are committed empty.
func (m *MemoryWork) Interrupt() {
	m.store.mu.Lock()
	m.store.stop = true
	m.store.mu.Unlock()
}

// Committed is batch b as the phase committed it; ok is false if it did not.
func (m *MemoryWork) Committed(b int) (c MemoryBatch, ok bool, err error) {
	mb := m.store.get(memoryKey(m.phase, b))
	if mb == nil || !mb.committed {
		return MemoryBatch{}, false, nil
	}
	c.Stats, c.Keys = mb.stats, mb.keys
	rc, _, err := m.store.openRows(context.Background(), m.job.ID(), m.phase, b)
	if err != nil {
		return c, true, err
	}
	dec := rows.NewDecoder(rc)
	if c.Rows, err = readRest(func(r *rows.Row) error { return dec.Decode(r) }); err != nil {
		return c, true, err
	}
	rdec := rows.NewDecoder(bytes.NewReader(mb.rejects))
	c.Rejects, err = readRest(func(r *rows.Reject) error { return rdec.Decode(r) })
	return c, true, err
}

// MemoryBatch is one committed batch of a MemoryWork.
type MemoryBatch struct {
	Rows    []rows.Row
	Rejects []rows.Reject
	Stats   events.BatchProgress
	Keys    KeySummary
}

// memoryBatches is the batchStore of a MemoryWork.
type memoryBatches struct {
	mu      sync.Mutex
	batches map[string]*memoryBatch
	stop    bool
}

type memoryBatch struct {
	rows      []byte
	rowsFrom  string // the batch whose rows it passed on
	rejects   []byte
	keys      KeySummary
	stats     events.BatchProgress
	committed bool
}

func memoryKey(phase string, b int) string { return phase + "/" + strconv.Itoa(b) }

func (s *memoryBatches) get(key string) *memoryBatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batches[key]
}

func (s *memoryBatches) committed(_ context.Context, _, phase string, b int) (bool, error) {
	mb := s.get(memoryKey(phase, b))
	return mb != nil && mb.committed, nil
}

func (s *memoryBatches) interrupted(context.Context, string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stop, nil
}

func (s *memoryBatches) openRows(_ context.Context, _, phase string, b int) (io.ReadCloser, string, error) {
	key := memoryKey(phase, b)
	mb := s.get(key)
	if mb != nil && mb.rowsFrom != "" {
		key, mb = mb.rowsFrom, s.get(mb.rowsFrom)
	}
	if mb == nil || !mb.committed {
		return nil, key, fmt.Errorf("batch %s: not committed", key)
	}
	return io.NopCloser(bytes.NewReader(mb.rows)), key, nil
}

func (s *memoryBatches) passed(_ context.Context, _, phase string, b int) (int64, string, error) {
	key := memoryKey(phase, b)
	mb := s.get(key)
	if mb == nil || !mb.committed {
		return 0, "", fmt.Errorf("batch %s: not committed", key)
	}
	if mb.rowsFrom != "" {
		return mb.stats.RowsOut, mb.rowsFrom, nil
	}
	return mb.stats.RowsOut, key, nil
}

func (s *memoryBatches) keys(_ context.Context, _, phase string, b int) (KeySummary, bool, error) {
	mb := s.get(memoryKey(phase, b))
	if mb == nil || len(mb.keys) == 0 {
		return nil, false, nil
	}
	return mb.keys, true, nil
}

func (s *memoryBatches) commitRows(_ context.Context, o *output) error {
	mb := &memoryBatch{rowsFrom: o.passFrom}
	if o.passFrom == "" {
		var err error
		if mb.rows, err = os.ReadFile(o.rowsF.Name()); err != nil {
			return err
		}
	}
	if !o.noSummary {
		mb.keys = bytes.Clone(o.keys)
	}
	if o.rejF != nil {
		var err error
		if mb.rejects, err = os.ReadFile(o.rejF.Name()); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.batches[memoryKey(o.phase, o.batch)]; old != nil && old.committed {
		return errors.New("batch committed twice")
	}
	s.batches[memoryKey(o.phase, o.batch)] = mb
	return nil
}

func (s *memoryBatches) commitStats(_ context.Context, o *output) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.batches[memoryKey(o.phase, o.batch)]
	if mb == nil {
		return errors.New("stats of a batch whose rows were not committed")
	}
	mb.stats, mb.committed = o.stats, true
	return nil
}

func (s *memoryBatches) handOn(context.Context, *Job, string, int, *events.BatchProgress) error {
	return nil
}
