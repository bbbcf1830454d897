package pipeline

// The blob store's batches: batch b of a phase is its rows object (absent
// when the batch passed its input on, which its stats then name), its
// rejects, its key summary and, written last, its stats: the commit mark.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/imports"
)

// blobBatches is the batchStore of every service.
type blobBatches struct{ h *Harness }

func (s blobBatches) blobs() blob.Store { return s.h.Env.Blobs }

func (s blobBatches) committed(ctx context.Context, id, phase string, b int) (bool, error) {
	_, err := s.blobs().Stat(ctx, imports.StatsKey(id, phase, b))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, blob.ErrNotFound):
		return false, nil
	}
	return false, err
}

func (s blobBatches) interrupted(ctx context.Context, id string) (bool, error) {
	req, err := s.h.interruption(ctx, id)
	return req != nil, err
}

func (s blobBatches) openRows(ctx context.Context, id, phase string, b int) (io.ReadCloser, string, error) {
	return openRows(ctx, s.blobs(), imports.OutKey(id, phase, b), imports.StatsKey(id, phase, b))
}

// OpenRows opens the rows phase passed on in batch b of import id.
func OpenRows(ctx context.Context, blobs blob.Store, id, phase string, b int) (io.ReadCloser, error) {
	rc, _, err := openRows(ctx, blobs, imports.OutKey(id, phase, b), imports.StatsKey(id, phase, b))
	return rc, err
}

// openRows opens the rows object key, or, when the batch passed its input on
// unchanged, the one its stats (statsKey) name: such a batch is stored once,
// where it was first written. It returns the key it opened.
func openRows(ctx context.Context, blobs blob.Store, key, statsKey string) (io.ReadCloser, string, error) {
	rc, err := blobs.Get(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		var st committedStats
		if err := getJSON(ctx, blobs, statsKey, &st); err != nil {
			return nil, key, fmt.Errorf("open batch %s: %w", key, err)
		}
		if st.RowsFrom == "" {
			return nil, key, fmt.Errorf("open batch %s: %w", key, blob.ErrNotFound)
		}
		key = st.RowsFrom
		rc, err = blobs.Get(ctx, key)
	}
	if err != nil {
		return nil, key, fmt.Errorf("open batch %s: %w", key, err)
	}
	return rc, key, nil
}

func (s blobBatches) passed(ctx context.Context, id, phase string, b int) (int64, string, error) {
	var st committedStats
	if err := getJSON(ctx, s.blobs(), imports.StatsKey(id, phase, b), &st); err != nil {
		return 0, "", err
	}
	if st.RowsFrom != "" {
		return st.RowsOut, st.RowsFrom, nil // passed on unchanged before too
	}
	return st.RowsOut, imports.OutKey(id, phase, b), nil
}

func (s blobBatches) keys(ctx context.Context, id, phase string, b int) (KeySummary, bool, error) {
	key := imports.KeysKey(id, phase, b)
	rc, err := s.blobs().Get(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("open key summary %s: %w", key, err)
	}
	defer rc.Close()
	sum, err := io.ReadAll(rc)
	if err != nil {
		return nil, false, fmt.Errorf("read key summary %s: %w", key, err)
	}
	if len(sum)%KeySummaryEntry != 0 {
		return nil, false, fmt.Errorf("key summary %s: %d bytes, not whole entries", key, len(sum))
	}
	return sum, true, nil
}

func (s blobBatches) commitRows(ctx context.Context, o *output) error {
	id := o.job.ID()
	switch {
	case !rowsRead(o.phase, o.job.Options):
		// Rows no phase reads (the last phase's, processing's unless an
		// overwrite needs them) go nowhere: storing them was a request and
		// an object a batch for nothing.
	case o.passFrom != "":
		// Rows an attempt that died before its stats stored here would be
		// read instead of the ones the stats name.
		if err := s.blobs().Delete(ctx, imports.OutKey(id, o.phase, o.batch)); err != nil {
			return err
		}
	default:
		if err := s.upload(ctx, o.rowsF, imports.OutKey(id, o.phase, o.batch)); err != nil {
			return err
		}
	}
	// The key summary, if the batch has one.
	if len(o.keys) > 0 && !o.noSummary {
		if err := s.blobs().Put(ctx, imports.KeysKey(id, o.phase, o.batch), bytes.NewReader(o.keys), int64(len(o.keys))); err != nil {
			return err
		}
	}
	rejects := imports.RejectsKey(id, o.phase, o.batch)
	if o.rejEnc == nil {
		// None, and none left by an attempt that wrote some and died
		// before its stats (an interrupted retry commits the batch empty).
		return s.blobs().Delete(ctx, rejects)
	}
	return s.upload(ctx, o.rejF, rejects)
}

func (s blobBatches) commitStats(ctx context.Context, o *output) error {
	return s.h.putJSON(ctx, imports.StatsKey(o.job.ID(), o.phase, o.batch), committedStats{o.stats, o.passFrom})
}

func (s blobBatches) handOn(ctx context.Context, job *Job, phase string, b int, st *events.BatchProgress) error {
	return s.h.afterBatch(ctx, job, phase, b, st)
}

// committedStats is a batch's stats object: its progress as published, and
// where its rows are when it passed them on unchanged.
type committedStats struct {
	events.BatchProgress
	RowsFrom string `json:"rows_from,omitempty"`
}

func (s blobBatches) upload(ctx context.Context, f *os.File, key string) error {
	if err := blob.PutFile(ctx, s.blobs(), key, f); err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	return nil
}
