package pipeline

// Batch I/O: what a phase reads and writes. Work hands a phase its batches
// (Each, Scan); Input streams batch b of the previous phase; Output collects
// batch b of this one, which the harness commits when the phase's function
// returns (rows, rejects, key summary, then stats: the mark). Where batches
// live is a batchStore: the blob store in every service (blobBatches), memory
// in a phase's unit tests (MemoryWork).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/internal/textlimit"
)

// Work is the set of batches one message asks a phase to produce.
type Work interface {
	// Batches lists the batch numbers of this work.
	Batches() []int
	// Each produces every batch of this work: fn reads batch b of the
	// previous phase from in and writes to out; the batch is committed when
	// fn returns. Batches committed by an earlier delivery are not produced
	// again. fn may be called for several batches at once.
	Each(ctx context.Context, fn func(b int, in Input, out Output) error) error
	// Scan reads every input batch once, for phases that must see the whole
	// file before they can decide about any row. fn may be called for
	// several batches at once.
	Scan(ctx context.Context, fn func(b int, in Input) error) error
	// Interrupted reports whether the import was asked to stop (phases that
	// act on the whole import, like overwrite cleanup, must then do nothing).
	Interrupted(ctx context.Context) (bool, error)
	// TempDir is where a phase may spill what does not fit in memory.
	TempDir() string
}

// Input streams the rows of one batch of the previous phase.
type Input interface {
	// Next reads the next row; it returns io.EOF after the last.
	Next(r *rows.Row) error
	// NextRaw reads the next row as it is stored: its head decoded, the rest
	// read on demand or copied on (Output.EmitRaw). It returns io.EOF after the last.
	NextRaw(r *rows.Raw) error
	// ReadAll reads the rest of the batch; memory is bounded by the batch size.
	ReadAll() ([]rows.Row, error)
	// ReadAllRaw is ReadAll of the rows as stored (NextRaw).
	ReadAllRaw() ([]rows.Raw, error)
	// ForEach calls fn with every remaining row (the row is reused: copy
	// what must outlive the call).
	ForEach(fn func(*rows.Row) error) error
	// Only limits the rows read after it to Num, ID, Op and the named fields
	// of Data: a whole-file scan reads what it needs and steps over the rest.
	Only(fields ...string)
	// Rewind starts the batch again from its first row (and its whole
	// rows): a phase may look at a few fields of every row first, and read
	// the rows whole only when it must.
	Rewind(ctx context.Context) error
	// Keys is the summary the previous phase wrote with this batch; ok is
	// false when it wrote none (then the rows are to be read).
	Keys(ctx context.Context) (sum KeySummary, ok bool, err error)
}

// Output collects one batch's surviving rows, rejected rows and counts.
type Output interface {
	// Emit passes r on to the next phase.
	Emit(r *rows.Row) error
	// EmitRaw passes r on with a new id and op and its record as rec says,
	// copying the rest of the row as it was read.
	EmitRaw(r *rows.Raw, id, op string, rec rows.RecordAs) error
	// PassThrough passes the input batch on as it is, every row unchanged,
	// without reading it. Nothing may have been emitted, rejected or skipped.
	PassThrough() error
	// Reject takes r out of the import as failed, with its first problem as
	// the reason and every problem in the message.
	Reject(r *rows.Row, problems ...rows.Problem) error
	// Skip takes r out of the import on purpose (a duplicate, a delete of a
	// missing record): reported, counted as skipped.
	Skip(r *rows.Row, p rows.Problem) error
	// Warn records that r was imported with warnings: counted in
	// stats.warnings and listed in the errors files with their own codes.
	// Processing calls it for the rows it applied.
	Warn(r *rows.Row) error
	// SummarizeKey adds a key value of a row this output emits to the
	// batch's summary. A summary must hold every key value the next phase
	// counts of every emitted row, or none at all (then the next phase reads
	// the rows).
	SummarizeKey(name, value string, row int64)
	// Stats is the batch's counts, for a phase to add what only it knows
	// (records created, updated, deleted).
	Stats() *events.BatchProgress
}

// batchStore is where batches live and how a batch is committed.
type batchStore interface {
	// committed reports whether batch b of phase was committed.
	committed(ctx context.Context, id, phase string, b int) (bool, error)
	// interrupted reports whether the import was asked to stop.
	interrupted(ctx context.Context, id string) (bool, error)
	// openRows opens the rows of batch b of phase, wherever they are stored;
	// from names them for a batch that passes them on.
	openRows(ctx context.Context, id, phase string, b int) (rc io.ReadCloser, from string, err error)
	// passed is what passing batch b of phase on unchanged needs: its row
	// count and where its rows are.
	passed(ctx context.Context, id, phase string, b int) (rowsOut int64, from string, err error)
	// keys reads the key summary of batch b of phase; ok is false without one.
	keys(ctx context.Context, id, phase string, b int) (sum KeySummary, ok bool, err error)
	// commitRows stores what o holds besides its stats.
	commitRows(ctx context.Context, o *output) error
	// commitStats stores o's stats: the batch is committed.
	commitStats(ctx context.Context, o *output) error
	// handOn is what follows a batch this work committed (progress, the next
	// phase's work).
	handOn(ctx context.Context, job *Job, phase string, b int, st *events.BatchProgress) error
}

// work is Work on a batchStore.
type work struct {
	h         *Harness
	store     batchStore
	job       *Job
	phase     string
	batches   []int
	mu        sync.Mutex
	committed map[int]bool
	handedOn  map[int]bool // committed by this delivery and passed to what follows
	stopped   bool         // an interrupt was requested: remaining batches are skipped
	settling  bool         // committing batches already applied: stop requests do not apply
}

func (h *Harness) newWork(store batchStore, job *Job, phase string, batches []int) *work {
	return &work{h: h, store: store, job: job, phase: phase, batches: batches,
		committed: map[int]bool{}, handedOn: map[int]bool{}}
}

// eachBatch runs fn for every batch of the work, several at once when the
// work has several (a barrier's message holds the whole file); the first
// error cancels the others.
func (w *work) eachBatch(ctx context.Context, fn func(ctx context.Context, b int) error) error {
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

func (w *work) markCommitted(b int) {
	w.mu.Lock()
	w.committed[b] = true
	w.mu.Unlock()
}

// stopRequested reports whether the remaining batches are to be committed
// empty: once an interrupt is seen it holds for the rest of the work.
func (w *work) stopRequested(ctx context.Context) (bool, error) {
	w.mu.Lock()
	stopped, settling := w.stopped, w.settling
	w.mu.Unlock()
	if stopped || settling {
		return stopped, nil
	}
	stop, err := w.store.interrupted(ctx, w.job.ID())
	if err != nil || !stop {
		return false, err
	}
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	return true, nil
}

func (w *work) Interrupted(ctx context.Context) (bool, error) {
	return w.store.interrupted(ctx, w.job.ID())
}

func (w *work) TempDir() string { return w.h.Env.TempDir }

func (w *work) Batches() []int { return w.batches }

func (w *work) Scan(ctx context.Context, fn func(b int, in Input) error) error {
	return w.eachBatch(ctx, func(ctx context.Context, b int) error {
		// A stopped import's batches are all committed empty: what a scan
		// would learn of them is never used.
		if stopped, err := w.stopRequested(ctx); err != nil || stopped {
			return err
		}
		in, err := w.open(ctx, b)
		if err != nil {
			return err
		}
		err = fn(b, in)
		in.Close()
		return err
	})
}

func (w *work) Each(ctx context.Context, fn func(b int, in Input, out Output) error) error {
	return w.eachBatch(ctx, func(ctx context.Context, b int) error {
		if done, err := w.store.committed(ctx, w.job.ID(), w.phase, b); err != nil {
			return err
		} else if done {
			w.markCommitted(b)
			return nil
		}
		stopped, err := w.stopRequested(ctx)
		if err != nil {
			return err
		}
		out, err := w.h.newOutput(w.store, w.job, w.phase, b)
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
		out.in = in
		err = fn(b, in, out)
		in.Close()
		out.stats.RowsIn = in.n
		if err == nil {
			err = out.commit(ctx)
		}
		if err != nil {
			return fmt.Errorf("batch %d: %w", b, err)
		}
		out.committed()
		w.markCommitted(b)
		// Hand the batch on now, not when the whole work is done: the next
		// phase starts on a barrier's first batches while it writes the rest.
		if err := w.store.handOn(ctx, w.job, w.phase, b, &out.stats); err != nil {
			return err
		}
		w.mu.Lock()
		w.handedOn[b] = true
		w.mu.Unlock()
		return nil
	})
}

func (w *work) open(ctx context.Context, b int) (*input, error) {
	i := flowIndex(w.phase)
	if i <= 0 {
		return nil, fmt.Errorf("phase %s has no input batches", w.phase)
	}
	return &input{ctx: ctx, store: w.store, id: w.job.ID(), phase: Flow[i-1].Phase, batch: b}, nil
}

// input is Input on a batchStore. The batch is opened at its first read: a
// phase that needs only its key summary never reads it.
type input struct {
	ctx   context.Context
	store batchStore
	id    string
	phase string // the previous phase
	batch int
	from  string // where the rows were read
	rc    io.ReadCloser
	dec   *rows.Decoder
	err   error // of opening
	n     int64
}

func (in *input) opened() error {
	if in.dec == nil && in.err == nil {
		in.err = in.Rewind(in.ctx)
	}
	return in.err
}

func (in *input) Rewind(ctx context.Context) error {
	if in.rc != nil {
		in.rc.Close()
	}
	rc, from, err := in.store.openRows(ctx, in.id, in.phase, in.batch)
	if err != nil {
		return err
	}
	in.from = from
	in.rc, in.dec, in.n = rc, rows.NewDecoder(rc), 0
	return nil
}

func (in *input) Next(r *rows.Row) error {
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

func (in *input) NextRaw(r *rows.Raw) error {
	if err := in.opened(); err != nil {
		return err
	}
	if err := in.dec.DecodeRaw(r); err != nil {
		return err
	}
	in.n++
	return nil
}

func (in *input) ReadAll() ([]rows.Row, error) { return readRest(in.Next) }

func (in *input) ReadAllRaw() ([]rows.Raw, error) { return readRest(in.NextRaw) }

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

func (in *input) ForEach(fn func(*rows.Row) error) error {
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

func (in *input) Only(fields ...string) {
	if in.opened() == nil {
		in.dec.Only(fields...)
	}
}

func (in *input) Keys(ctx context.Context) (KeySummary, bool, error) {
	return in.store.keys(ctx, in.id, in.phase, in.batch)
}

// Close releases the batch.
func (in *input) Close() {
	if in.rc != nil {
		_ = in.rc.Close()
	}
}

// output is Output on a batchStore: rows and rejects are written to temp
// files as they come, and stored when the batch is committed.
type output struct {
	store    batchStore
	h        *Harness
	job      *Job
	phase    string
	batch    int
	in       *input
	passFrom string // where the input batch's rows are, when it passes on unchanged
	rowsF    *os.File
	rejF     *os.File
	rowsEnc  *rows.RowWriter
	rejEnc   *rows.Encoder
	keys     KeySummary
	// noSummary: the import has one batch, which the next phase reads
	// faster than one more object.
	noSummary bool
	stats     events.BatchProgress
}

func (h *Harness) newOutput(store batchStore, job *Job, phase string, b int) (*output, error) {
	rf, err := os.CreateTemp(h.Env.TempDir, "rows-*.batch")
	if err != nil {
		return nil, fmt.Errorf("temp batch file: %w", err)
	}
	return &output{
		store: store, h: h, job: job, phase: phase, batch: b,
		rowsF: rf, rowsEnc: rows.NewRowWriter(rf), noSummary: job.Batches == 1,
		stats: events.BatchProgress{ImportID: job.ID(), Phase: phase, Batch: b, BatchesTotal: job.Batches, StartedAt: h.Env.now()},
	}, nil
}

func (o *output) Stats() *events.BatchProgress { return &o.stats }

// writeReject adds rej to the batch's rejects, whose file is made at the
// first: most batches have none, and a new file costs more than its rows
// (profiled: about 1 ms of kernel CPU to create one on ext4).
func (o *output) writeReject(rej rows.Reject) error {
	if o.rejEnc == nil {
		f, err := os.CreateTemp(o.h.Env.TempDir, "rejects-*.ndjson")
		if err != nil {
			return fmt.Errorf("temp rejects file: %w", err)
		}
		o.rejF, o.rejEnc = f, rows.NewEncoder(f)
	}
	return o.rejEnc.Encode(rej)
}

// PassThrough does not store the batch again: the batch names where its
// rows are, and the next phase reads them there (profiled in the separate
// shape: a server-side copy cost MinIO a tenth of its CPU). The rows are
// never decoded and encoded again, and counted by the previous phase's
// stats of them (profiled at 10M rows: stepping over every row to count it
// was 40 s of preparsing).
func (o *output) PassThrough() error {
	if o.stats.RowsOut+o.stats.RowsFailed+o.stats.Skipped+o.stats.Warnings > 0 {
		return errors.New("pass-through of a batch that already has output")
	}
	if o.in == nil {
		return errors.New("pass-through of a batch without input")
	}
	n, from, err := o.store.passed(o.in.ctx, o.in.id, o.in.phase, o.in.batch)
	if err != nil {
		return fmt.Errorf("count of %s batch %d: %w", o.in.phase, o.in.batch, err)
	}
	o.in.n, o.passFrom = n, from
	o.stats.RowsOut = n
	return nil
}

func (o *output) Emit(r *rows.Row) error {
	if o.passFrom != "" {
		return errors.New("emit after pass-through")
	}
	o.stats.RowsOut++
	return o.rowsEnc.Write(r)
}

func (o *output) EmitRaw(r *rows.Raw, id, op string, rec rows.RecordAs) error {
	if o.passFrom != "" {
		return errors.New("emit after pass-through")
	}
	o.stats.RowsOut++
	return o.rowsEnc.WriteRaw(r, id, op, rec)
}

func (o *output) Warn(r *rows.Row) error {
	if len(r.Warnings) == 0 {
		return nil
	}
	o.stats.Warnings++
	rej := o.reject(r, r.Warnings, false)
	// Warnings are found while the file is read; the row is reported there.
	rej.Phase, rej.Warning = events.PhasePrevalidation, true
	return o.writeReject(rej)
}

func (o *output) Reject(r *rows.Row, problems ...rows.Problem) error {
	o.stats.RowsFailed++
	return o.writeReject(o.reject(r, problems, false))
}

func (o *output) Skip(r *rows.Row, p rows.Problem) error {
	o.stats.Skipped++
	return o.writeReject(o.reject(r, []rows.Problem{p}, true))
}

func (o *output) SummarizeKey(name, value string, row int64) { o.keys.Add(name, value, row) }

func (o *output) reject(r *rows.Row, problems []rows.Problem, skipped bool) rows.Reject {
	rej := rows.Reject{Row: r.Num, Phase: o.phase, Skipped: skipped, Data: r.Raw}
	if len(problems) > 0 {
		sum := rows.Summary(problems)
		rej.Code, rej.Field, rej.Message = sum.Code, sum.Field, sum.Message
		// Messages quote what the user sent: bounded and escaped here, once.
		rej.Message = textlimit.Clip(rej.Message, textlimit.Message)
		rej.Field = textlimit.Clip(rej.Field, textlimit.Field)
	}
	return rej
}

func (o *output) commit(ctx context.Context) error {
	if err := o.commitRows(ctx); err != nil {
		return err
	}
	return o.commitStats(ctx)
}

// commitRows stores the batch's rows, key summary and rejects; a
// redelivery writes the same bytes again.
func (o *output) commitRows(ctx context.Context) error {
	if err := o.rowsEnc.Flush(); err != nil {
		return err
	}
	if o.rejEnc != nil {
		if err := o.rejEnc.Flush(); err != nil {
			return err
		}
	}
	return o.store.commitRows(ctx, o)
}

// commitStats stores the batch's stats, last: their presence means the
// batch is committed.
func (o *output) commitStats(ctx context.Context) error {
	o.stats.CompletedAt = o.h.Env.now()
	return o.store.commitStats(ctx, o)
}

// committed logs and observes the batch this delivery committed.
func (o *output) committed() {
	if o.h.Env.Observer != nil {
		o.h.Env.Observer.BatchCommitted(o.phase, &o.stats)
	}
	o.h.Env.Log.Info().Str("import_id", o.job.ID()).Str("phase", o.phase).Int("batch", o.batch).
		Int64("rows_in", o.stats.RowsIn).Int64("rows_out", o.stats.RowsOut).Int64("rows_failed", o.stats.RowsFailed).Int64("skipped", o.stats.Skipped).Msg("batch committed")
}

// discard removes the batch's files and lets go of its writers and summary:
// the Splitter keeps every batch's output until the file's end (their stats
// are committed last), which must cost a few counts, not buffers, a batch
// (measured at 10M rows: 2,000 outputs holding their summaries and buffers
// were 1.6 GB).
func (o *output) discard() {
	for _, f := range []*os.File{o.rowsF, o.rejF} {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
	o.rowsEnc, o.rejEnc, o.keys, o.in = nil, nil, nil, nil
}
