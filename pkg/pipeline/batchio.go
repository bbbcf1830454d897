package pipeline

// Batch I/O: what a phase reads and writes. Work hands a phase its batches
// (Each, Scan); Input streams batch b of the previous phase; Output collects
// batch b of this one and commits it (rows, rejects, then stats: the mark).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/blob"
	"github.com/inlet-dev/inlet/pkg/imports"
	"github.com/inlet-dev/inlet/pkg/rows"
)

// Work is the set of batches one message asks a phase to produce.
type Work struct {
	h         *Harness
	job       *Job
	phase     string
	batches   []int
	mu        sync.Mutex
	committed map[int]bool
	handedOn  map[int]bool // committed by this delivery and passed to what follows
	stopped   bool         // an interrupt was requested: remaining batches are skipped
	settling  bool         // committing batches already applied: stop requests do not apply
}

// eachBatch runs fn for every batch of the work, several at once when the
// work has several (a barrier's message holds the whole file); the first
// error cancels the others.
func (w *Work) eachBatch(ctx context.Context, fn func(ctx context.Context, b int) error) error {
	if len(w.batches) == 1 {
		return fn(ctx, w.batches[0])
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(w.h.Env.Parallelism)
	for _, b := range w.batches {
		g.Go(func() error { return fn(ctx, b) })
	}
	return g.Wait()
}

func (w *Work) markCommitted(b int) {
	w.mu.Lock()
	w.committed[b] = true
	w.mu.Unlock()
}

// stopRequested reports whether the remaining batches are to be committed
// empty: once an interrupt is seen it holds for the rest of the work.
func (w *Work) stopRequested(ctx context.Context) (bool, error) {
	w.mu.Lock()
	stopped, settling := w.stopped, w.settling
	w.mu.Unlock()
	if stopped || settling {
		return stopped, nil
	}
	req, err := w.h.interruption(ctx, w.job.ID())
	if err != nil || req == nil {
		return false, err
	}
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	return true, nil
}

// Interrupted reports whether the import was asked to stop (phases that act
// on the whole import, like overwrite cleanup, must then do nothing).
func (w *Work) Interrupted(ctx context.Context) (bool, error) {
	req, err := w.h.interruption(ctx, w.job.ID())
	return req != nil, err
}

// TempDir is where a phase may spill what does not fit in memory.
func (w *Work) TempDir() string { return w.h.Env.TempDir }

// Batches lists the batch numbers of this work.
func (w *Work) Batches() []int { return w.batches }

// Scan reads every input batch once, for phases that must see the whole file
// before they can decide about any row. fn may be called for several
// batches at once.
func (w *Work) Scan(ctx context.Context, fn func(b int, in *Input) error) error {
	return w.eachBatch(ctx, func(ctx context.Context, b int) error {
		in, err := w.open(ctx, b)
		if err != nil {
			return err
		}
		err = fn(b, in)
		in.Close()
		return err
	})
}

// Each produces every batch of this work: fn reads batch b of the previous
// phase from in and writes to out; the harness commits out when fn returns.
// Batches committed by an earlier delivery are not produced again. fn may be
// called for several batches at once.
func (w *Work) Each(ctx context.Context, fn func(b int, in *Input, out *Output) error) error {
	w.mu.Lock()
	if w.committed == nil {
		w.committed = map[int]bool{}
		w.handedOn = map[int]bool{}
	}
	w.mu.Unlock()
	return w.eachBatch(ctx, func(ctx context.Context, b int) error {
		if _, err := w.h.Env.Blobs.Stat(ctx, imports.StatsKey(w.job.ID(), w.phase, b)); err == nil {
			w.markCommitted(b)
			return nil
		} else if !errors.Is(err, blob.ErrNotFound) {
			return err
		}
		stopped, err := w.stopRequested(ctx)
		if err != nil {
			return err
		}
		out, err := w.h.newOutput(w.job, w.phase, b)
		if err != nil {
			return err
		}
		defer out.discard()
		if stopped {
			// Interrupted: the batch boundary is here. The batch is committed
			// empty so the import still flows to its end, where it is finished
			// as interrupted with what was applied before.
			if err := out.commit(ctx); err != nil {
				return err
			}
			w.markCommitted(b)
			return nil
		}
		in, err := w.open(ctx, b)
		if err != nil {
			return err
		}
		err = fn(b, in, out)
		in.Close()
		out.Stats.RowsIn = in.n
		if err == nil {
			err = out.commit(ctx)
		}
		if err != nil {
			return fmt.Errorf("batch %d: %w", b, err)
		}
		out.logCommitted()
		w.markCommitted(b)
		// Hand the batch on now, not when the whole work is done: the next
		// phase starts on a barrier's first batches while it writes the rest.
		if err := w.h.afterBatch(ctx, w.job, w.phase, b, &out.Stats); err != nil {
			return err
		}
		w.mu.Lock()
		w.handedOn[b] = true
		w.mu.Unlock()
		return nil
	})
}

func (w *Work) open(ctx context.Context, b int) (*Input, error) {
	i := flowIndex(w.phase)
	if i <= 0 {
		return nil, fmt.Errorf("phase %s has no input batches", w.phase)
	}
	prev := Flow[i-1].Phase
	id := w.job.ID()
	return &Input{ctx: ctx, key: imports.OutKey(id, prev, b), keysKey: imports.KeysKey(id, prev, b),
		statsKey: imports.StatsKey(id, prev, b), h: w.h}, nil
}

// Input streams the rows of one batch. The batch is opened at its first
// read: a phase that needs only its key summary never reads it.
type Input struct {
	ctx      context.Context
	key      string
	keysKey  string
	statsKey string
	h        *Harness
	rc       io.ReadCloser
	dec      *rows.Decoder
	err      error // of opening
	n        int64
}

func (in *Input) opened() error {
	if in.dec == nil && in.err == nil {
		in.err = in.Rewind(in.ctx)
	}
	return in.err
}

// Rewind starts the batch again from its first row (and its whole rows): a
// phase may look at a few fields of every row first, and read the rows
// whole only when it must.
func (in *Input) Rewind(ctx context.Context) error {
	if in.rc != nil {
		in.rc.Close()
	}
	rc, key, err := openRows(ctx, in.h.Env.Blobs, in.key, in.statsKey)
	if err != nil {
		return err
	}
	in.key = key
	in.rc, in.dec, in.n = rc, rows.NewDecoder(rc), 0
	return nil
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

// Next reads the next row; it returns io.EOF after the last.
func (in *Input) Next(r *rows.Row) error {
	*r = rows.Row{}
	if err := in.opened(); err != nil {
		return err
	}
	if err := in.dec.Decode(r); err != nil {
		return err
	}
	in.n++
	return nil
}

// NextRaw reads the next row as it is stored: its head decoded, the rest
// read on demand or copied on (Output.EmitRaw). It returns io.EOF after the last.
func (in *Input) NextRaw(r *rows.Raw) error {
	if err := in.opened(); err != nil {
		return err
	}
	if err := in.dec.DecodeRaw(r); err != nil {
		return err
	}
	in.n++
	return nil
}

// ReadAll reads the rest of the batch; memory is bounded by the batch size.
func (in *Input) ReadAll() ([]rows.Row, error) { return readRest(in.Next) }

// ReadAllRaw is ReadAll of the rows as stored (NextRaw).
func (in *Input) ReadAllRaw() ([]rows.Raw, error) { return readRest(in.NextRaw) }

func readRest[T any](next func(*T) error) ([]T, error) {
	var out []T
	for {
		var r T
		if err := next(&r); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		out = append(out, r)
	}
}

// ForEach calls fn with every remaining row (the row is reused: copy what
// must outlive the call).
func (in *Input) ForEach(fn func(*rows.Row) error) error {
	var r rows.Row
	for {
		if err := in.Next(&r); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
}

// Only limits the rows read after it to Num, ID, Op and the named fields of
// Data: a whole-file scan reads what it needs and steps over the rest.
func (in *Input) Only(fields ...string) {
	if in.opened() == nil {
		in.dec.Only(fields...)
	}
}

// Close releases the batch.
func (in *Input) Close() {
	if in.rc != nil {
		_ = in.rc.Close()
	}
}

// Output collects one batch's surviving rows, rejected rows and counts.
type Output struct {
	h        *Harness
	job      *Job
	phase    string
	batch    int
	passFrom string // the input batch, when it passes on unchanged
	rowsF    *os.File
	rejF     *os.File
	rowsEnc  *rows.RowWriter
	rejEnc   *rows.Encoder
	keys     KeySummary
	// noSummary: the import has one batch, which the next phase reads
	// faster than one more object.
	noSummary bool
	Stats     events.BatchProgress
	Internal  bool
}

func (h *Harness) newOutput(job *Job, phase string, b int) (*Output, error) {
	rf, err := os.CreateTemp(h.Env.TempDir, "rows-*.batch")
	if err != nil {
		return nil, fmt.Errorf("temp batch file: %w", err)
	}
	return &Output{
		h: h, job: job, phase: phase, batch: b,
		rowsF: rf, rowsEnc: rows.NewRowWriter(rf), noSummary: job.Batches == 1,
		Stats: events.BatchProgress{ImportID: job.ID(), Phase: phase, Batch: b, BatchesTotal: job.Batches, StartedAt: h.Env.now()},
	}, nil
}

// writeReject adds rej to the batch's rejects, whose file is made at the
// first: most batches have none, and a new file costs more than its rows
// (profiled: about 1 ms of kernel CPU to create one on ext4).
func (o *Output) writeReject(rej rows.Reject) error {
	if o.rejEnc == nil {
		f, err := os.CreateTemp(o.h.Env.TempDir, "rejects-*.ndjson")
		if err != nil {
			return fmt.Errorf("temp rejects file: %w", err)
		}
		o.rejF, o.rejEnc = f, rows.NewEncoder(f)
	}
	return o.rejEnc.Encode(rej)
}

// PassThrough passes the input batch on as it is, every row unchanged:
// not stored again but named in the batch's stats, which the next phase
// reads when it finds no rows of its own (profiled in the separate shape: a
// server-side copy cost MinIO a tenth of its CPU), never decoded and encoded
// again, its rows counted by the previous phase's stats of it (profiled at
// 10M rows: stepping over every row to count it was 40 s of preparsing).
// Nothing may have been emitted, rejected or skipped.
func (o *Output) PassThrough(in *Input) error {
	if o.Stats.RowsOut+o.Stats.RowsFailed+o.Stats.Skipped+o.Stats.Warnings > 0 {
		return errors.New("pass-through of a batch that already has output")
	}
	var prev committedStats
	if err := in.h.getJSON(in.ctx, in.statsKey, &prev); err != nil {
		return fmt.Errorf("count of %s: %w", in.key, err)
	}
	if prev.RowsFrom != "" {
		in.key = prev.RowsFrom // passed on unchanged before too
	}
	in.n = prev.RowsOut
	o.passFrom = in.key
	o.Stats.RowsOut = in.n
	return nil
}

// Emit passes r on to the next phase.
func (o *Output) Emit(r *rows.Row) error {
	if o.passFrom != "" {
		return errors.New("emit after pass-through")
	}
	o.Stats.RowsOut++
	return o.rowsEnc.Write(r)
}

// EmitRaw passes r on with a new id and op and its record as rec says,
// copying the rest of the row as it was read.
func (o *Output) EmitRaw(r *rows.Raw, id, op string, rec rows.RecordAs) error {
	if o.passFrom != "" {
		return errors.New("emit after pass-through")
	}
	o.Stats.RowsOut++
	return o.rowsEnc.WriteRaw(r, id, op, rec)
}

// Warn records that r was imported with warnings: counted in stats.warnings
// and listed in the errors files with their own codes. Processing calls it
// for the rows it applied.
func (o *Output) Warn(r *rows.Row) error {
	if len(r.Warnings) == 0 {
		return nil
	}
	o.Stats.Warnings++
	rej := o.reject(r, r.Warnings, false)
	// Warnings are found while the file is read; the row is reported there.
	rej.Phase, rej.Warning = events.PhasePrevalidation, true
	return o.writeReject(rej)
}

// Reject takes r out of the import as failed, with its first problem as the
// reason and every problem in the message.
func (o *Output) Reject(r *rows.Row, problems ...rows.Problem) error {
	o.Stats.RowsFailed++
	return o.writeReject(o.reject(r, problems, false))
}

// Skip takes r out of the import on purpose (a duplicate, a delete of a
// missing record): reported, counted as skipped.
func (o *Output) Skip(r *rows.Row, p rows.Problem) error {
	o.Stats.Skipped++
	return o.writeReject(o.reject(r, []rows.Problem{p}, true))
}

func (o *Output) reject(r *rows.Row, problems []rows.Problem, skipped bool) rows.Reject {
	rej := rows.Reject{Row: r.Num, Phase: o.phase, Skipped: skipped, Data: r.Raw}
	if len(problems) > 0 {
		rej.Code, rej.Field, rej.Message = problems[0].Code, problems[0].Field, problems[0].Message
		for _, p := range problems[1:] {
			rej.Message += "; " + p.Message
		}
	}
	return rej
}

func (o *Output) commit(ctx context.Context) error {
	if err := o.commitRows(ctx); err != nil {
		return err
	}
	return o.commitStats(ctx)
}

func (o *Output) commitRows(ctx context.Context) error {
	if err := o.rowsEnc.Flush(); err != nil {
		return err
	}
	id := o.job.ID()
	switch _, _, read := next(o.phase); {
	case !read:
		// The last phase's rows go nowhere: storing them was a request and
		// an object a batch for nothing.
	case o.passFrom != "":
		// Rows an attempt that died before its stats stored here would be
		// read instead of the ones the stats name.
		if err := o.h.Env.Blobs.Delete(ctx, imports.OutKey(id, o.phase, o.batch)); err != nil {
			return err
		}
	default:
		if err := o.upload(ctx, o.rowsF, imports.OutKey(id, o.phase, o.batch)); err != nil {
			return err
		}
	}
	if err := o.commitKeys(ctx); err != nil {
		return err
	}
	rejects := imports.RejectsKey(id, o.phase, o.batch)
	if o.rejEnc == nil {
		// None, and none left by an attempt that wrote some and died
		// before its stats (an interrupted retry commits the batch empty).
		return o.h.Env.Blobs.Delete(ctx, rejects)
	}
	if err := o.rejEnc.Flush(); err != nil {
		return err
	}
	return o.upload(ctx, o.rejF, rejects)
}

func (o *Output) commitStats(ctx context.Context) error {
	id := o.job.ID()
	o.Stats.CompletedAt = o.h.Env.now()
	// The stats object is written last: its presence means the batch is committed.
	return o.h.putJSON(ctx, imports.StatsKey(id, o.phase, o.batch), committedStats{o.Stats, o.passFrom})
}

// committedStats is a batch's stats object: its progress as published, and
// where its rows are when it passed them on unchanged.
type committedStats struct {
	events.BatchProgress
	RowsFrom string `json:"rows_from,omitempty"`
}

func (o *Output) logCommitted() {
	log := o.h.Env.Log.With().Str("import_id", o.job.ID()).Str("phase", o.phase).Int("batch", o.batch).Logger()
	log.Info().Int64("rows_in", o.Stats.RowsIn).Int64("rows_out", o.Stats.RowsOut).
		Int64("rows_failed", o.Stats.RowsFailed).Int64("skipped", o.Stats.Skipped).Msg("batch committed")
}

func (o *Output) upload(ctx context.Context, f *os.File, key string) error {
	if err := blob.PutFile(ctx, o.h.Env.Blobs, key, f); err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	return nil
}

// discard removes the batch's files and lets go of its writers and summary:
// the Splitter keeps every batch's Output until the file's end (their stats
// are committed last), which must cost a few counts, not buffers, a batch
// (measured at 10M rows: 2,000 outputs holding their summaries and buffers
// were 1.6 GB).
func (o *Output) discard() {
	for _, f := range []*os.File{o.rowsF, o.rejF} {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
	o.rowsEnc, o.rejEnc, o.keys = nil, nil, nil
}
