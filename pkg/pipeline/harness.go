package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/blob"
	"github.com/inlet-dev/inlet/pkg/imports"
	"github.com/inlet-dev/inlet/pkg/resources"
	"github.com/inlet-dev/inlet/pkg/rows"
	"github.com/inlet-dev/inlet/pkg/store"
)

// Publisher is what the harness needs from the broker.
type Publisher interface {
	Publish(subject, msgID string, payload []byte) error
	PublishEvent(subject string, ce events.CloudEvent) error
}

// Registry finds resource definitions.
type Registry interface {
	Get(name string) (*resources.Resource, bool)
}

// Env is what a phase runs against.
type Env struct {
	Blobs    blob.Store
	Records  store.RecordStore
	Registry Registry
	Pub      Publisher
	Log      zerolog.Logger
	// Source is the CloudEvents source of the events this process publishes.
	Source string
	// BatchSize is the number of file rows per batch.
	BatchSize int
	// TempDir holds batch files while they are written.
	TempDir string
	// Heartbeat keeps a long-running message from being redelivered.
	Heartbeat func(*message.Message)
	// Delivery is how many times a message has been delivered.
	Delivery func(*message.Message) uint64
	// MaxDeliver is the consumer's redelivery bound: the last delivery of a
	// failing message fails the import instead of leaving it processing.
	MaxDeliver uint64
	// HeartbeatEvery is how often a long handler reports progress to the server.
	HeartbeatEvery time.Duration
	// Parallelism is how many batches one message of a barrier phase works
	// on at once (default: GOMAXPROCS; the app sets INLET_CONCURRENCY, as
	// many as the process handles when the batches come one per message).
	// The whole file is in that message, and nothing else of the import can
	// run meanwhile.
	Parallelism int
	// Settle is the processing phase, run by a forced timeout over the batches
	// the store applied but whose commit died with their process.
	Settle Phase
	Now    func() time.Time
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

// WorkMessage is the body of an internal phase work message.
type WorkMessage struct {
	Options events.Options `json:"options"`
	Phase   string         `json:"phase"`
	// Batch is the batch to work on, or AllBatches for a barrier phase.
	Batch   int `json:"batch"`
	Batches int `json:"batches"`
}

// AllBatches marks a work message for a barrier phase.
const AllBatches = -1

// Job is one import as a phase sees it.
type Job struct {
	Options  events.Options
	Resource *resources.Resource
	Batches  int
	Log      zerolog.Logger
}

// ID is the import id.
func (j *Job) ID() string { return j.Options.ID }

// Scope is where the import's records live.
func (j *Job) Scope() store.Scope {
	return store.Scope{Org: j.Options.OrganizationID, Mode: j.Options.Mode, Resource: j.Options.Resource}
}

// Phase is the logic of one phase; the harness does everything else.
type Phase interface {
	Name() string
	// Run processes the work's batches. It must be deterministic given its
	// inputs and the store: a redelivered message runs it again.
	Run(ctx context.Context, job *Job, w *Work) error
}

// FatalError ends the import as failed without retrying: the input, not the
// system, is at fault (unreadable file, unknown resource).
type FatalError struct{ Reason string }

func (e *FatalError) Error() string { return e.Reason }

// Fatal builds a FatalError.
func Fatal(format string, args ...any) error {
	return &FatalError{Reason: fmt.Sprintf(format, args...)}
}

// Harness runs phases.
type Harness struct {
	Env *Env
}

// New builds a harness.
func New(env *Env) *Harness {
	if env.BatchSize <= 0 {
		env.BatchSize = 2000
	}
	if env.HeartbeatEvery <= 0 {
		env.HeartbeatEvery = 5 * time.Second
	}
	if env.MaxDeliver == 0 {
		env.MaxDeliver = 10
	}
	if env.Parallelism <= 0 {
		env.Parallelism = runtime.GOMAXPROCS(0)
	}
	return &Harness{Env: env}
}

// WorkHandler is the watermill handler of phase p's work subject.
func (h *Harness) WorkHandler(p Phase) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		var wm WorkMessage
		if err := json.Unmarshal(msg.Payload, &wm); err != nil {
			// Nothing can make this message readable: redelivering it would only block the consumer.
			h.Env.Log.Error().Err(err).Str("phase", p.Name()).Msg("dropping unreadable work message")
			return nil
		}
		lc := h.Env.Log.With().Str("import_id", wm.Options.ID).Str("phase", p.Name())
		if wm.Batch == AllBatches {
			lc = lc.Str("batch", "all")
		} else {
			lc = lc.Int("batch", wm.Batch)
		}
		log := lc.Logger()
		ctx := log.WithContext(msg.Context())
		return h.guard(ctx, msg, wm.Options, log, func(ctx context.Context) error {
			job, err := h.job(wm.Options, wm.Batches, log)
			if err != nil {
				return err
			}
			return h.runWork(ctx, p, job, wm.Batch)
		})
	}
}

// guard runs fn for one message of import opts: it skips finished imports,
// keeps a long handler alive, and turns a failure that retries cannot cure
// into a failed import instead of a message redelivered forever.
func (h *Harness) guard(ctx context.Context, msg *message.Message, opts events.Options, log zerolog.Logger, fn func(context.Context) error) error {
	if _, err := h.Env.Blobs.Stat(ctx, imports.TerminalKey(opts.ID)); err == nil {
		log.Debug().Msg("import already finished; message ignored")
		return nil
	}
	stop := h.keepAlive(msg)
	err := fn(ctx)
	stop()
	if err == nil {
		return nil
	}
	var fatal *FatalError
	delivery := uint64(1)
	if h.Env.Delivery != nil {
		delivery = h.Env.Delivery(msg)
	}
	switch {
	case errors.As(err, &fatal):
		log.Warn().Str("reason", fatal.Reason).Msg("import failed")
		return h.Finish(ctx, opts, events.StatusFailed, fatal.Reason)
	case delivery >= h.Env.MaxDeliver:
		reason := fmt.Sprintf("%v (gave up after %d attempts)", err, delivery)
		log.Error().Err(err).Uint64("delivery", delivery).Msg("import failed: retries exhausted")
		return h.Finish(ctx, opts, events.StatusFailed, reason)
	default:
		log.Warn().Err(err).Uint64("delivery", delivery).Msg("phase failed; message will be redelivered")
		return err
	}
}

func (h *Harness) keepAlive(msg *message.Message) func() {
	if h.Env.Heartbeat == nil || msg == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(h.Env.HeartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				h.Env.Heartbeat(msg)
			}
		}
	}()
	return func() { close(done) }
}

func (h *Harness) job(opts events.Options, batches int, log zerolog.Logger) (*Job, error) {
	res, ok := h.Env.Registry.Get(opts.Resource)
	if !ok {
		return nil, Fatal("resource %q is not defined", opts.Resource)
	}
	return &Job{Options: opts, Resource: res, Batches: batches, Log: log}, nil
}

// runWork runs phase p over batch (or all batches) and publishes what follows.
func (h *Harness) runWork(ctx context.Context, p Phase, job *Job, batch int) error {
	w := &Work{h: h, job: job, phase: p.Name()}
	if batch == AllBatches {
		for b := 0; b < job.Batches; b++ {
			w.batches = append(w.batches, b)
		}
	} else {
		w.batches = []int{batch}
	}
	if err := p.Run(ctx, job, w); err != nil {
		return err
	}
	for _, b := range w.batches {
		if !w.committed[b] {
			return fmt.Errorf("phase %s did not produce batch %d", p.Name(), b)
		}
	}
	// Batches this delivery produced were handed on as each committed; those
	// an earlier delivery committed are handed on again, in case it died
	// before it could (the message ids are the same: JetStream dedups).
	for _, b := range w.batches {
		if w.handedOn[b] {
			continue
		}
		if err := h.afterBatch(ctx, job, p.Name(), b); err != nil {
			return err
		}
	}
	return h.afterPhaseIfDone(ctx, job, p.Name())
}

// streamsInto reports whether the next phase takes batch b of phase as soon
// as it is committed: a PerBatch phase always, a Gated one when there is no
// threshold to check first (skip_errors); a user's interrupt still stops it
// at its next batch boundary.
func streamsInto(job *Job, entry Entry) bool {
	return entry == PerBatch || entry == Gated && job.Options.SkipErrors
}

// afterBatch publishes the batch's progress and, for a streaming next phase, its work.
func (h *Harness) afterBatch(ctx context.Context, job *Job, phase string, b int) error {
	st, err := h.readStats(ctx, job.ID(), phase, b)
	if err != nil {
		return err
	}
	if err := h.publishEvent(job.Options, events.EventProgress, fmt.Sprintf("%s:progress:%s:%d", job.ID(), phase, b), st); err != nil {
		return err
	}
	if nextPhase, entry, ok := next(phase); ok && streamsInto(job, entry) {
		return h.publishWork(job, nextPhase, b)
	}
	return nil
}

// afterPhaseIfDone checks whether every batch of phase is committed and, if
// so, announces it and hands the import to what comes next. Each replica
// checks after its own commit; the last committer always sees them all, and
// two that both see them publish the same message ids, which JetStream dedups.
func (h *Harness) afterPhaseIfDone(ctx context.Context, job *Job, phase string) error {
	list, err := h.Env.Blobs.List(ctx, imports.StatsPrefix(job.ID(), phase))
	if err != nil {
		return fmt.Errorf("list %s stats: %w", phase, err)
	}
	if len(list) < job.Batches {
		return nil
	}
	pc := events.PhaseCompleted{ImportID: job.ID(), Phase: phase, BatchesTotal: job.Batches, CompletedAt: h.Env.now()}
	if err := h.publishEvent(job.Options, events.EventPhaseCompleted, fmt.Sprintf("%s:phase_completed:%s", job.ID(), phase), pc); err != nil {
		return err
	}
	nextPhase, entry, ok := next(phase)
	if !ok {
		status, reason, err := h.stopStatus(ctx, job.ID())
		if err != nil {
			return err
		}
		if status != "" {
			return h.Finish(ctx, job.Options, status, reason)
		}
		return h.Finish(ctx, job.Options, events.StatusCompleted, "")
	}
	switch entry {
	case Barrier:
		return h.publishWork(job, nextPhase, AllBatches)
	case Gated:
		if streamsInto(job, entry) {
			return nil // every batch was handed on as it committed
		}
		status, reason, err := h.gate(ctx, job)
		if err != nil {
			return err
		}
		if status != "" {
			return h.Finish(ctx, job.Options, status, reason)
		}
		for b := 0; b < job.Batches; b++ {
			if err := h.publishWork(job, nextPhase, b); err != nil {
				return err
			}
		}
	}
	return nil
}

func (h *Harness) publishWork(job *Job, phase string, b int) error {
	body, err := json.Marshal(WorkMessage{Options: job.Options, Phase: phase, Batch: b, Batches: job.Batches})
	if err != nil {
		return err
	}
	subject := WorkSubject(phase)
	if job.Batches <= 1 {
		subject = ExpressSubject(phase)
	}
	return h.Env.Pub.Publish(subject, fmt.Sprintf("%s:work:%s:%d", job.ID(), phase, b), body)
}

// WorkSubject is where phase's work messages are published.
func WorkSubject(phase string) string { return "inlet.work." + phase }

// ExpressSubject is where the work of imports of one batch goes: a consumer
// of its own, so a small import never queues behind the batches of a big
// one (a FIFO consumer would make it wait for all of them).
func ExpressSubject(phase string) string { return WorkSubject(phase) + ".express" }

func (h *Harness) publishEvent(o events.Options, event, id string, data any) error {
	ce, err := events.New(id, h.Env.Source, event, o.ID, data)
	if err != nil {
		return err
	}
	return h.Env.Pub.PublishEvent(events.Subject(o.OrganizationID, o.Resource, event), ce)
}

func (h *Harness) readStats(ctx context.Context, id, phase string, b int) (events.BatchProgress, error) {
	var st events.BatchProgress
	err := h.getJSON(ctx, imports.StatsKey(id, phase, b), &st)
	return st, err
}

func (h *Harness) getJSON(ctx context.Context, key string, v any) error {
	rc, err := h.Env.Blobs.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := json.NewDecoder(rc).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

func (h *Harness) putJSON(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return h.Env.Blobs.Put(ctx, key, bytes.NewReader(b), int64(len(b)))
}

// Finish ends the import with status (unless it already ended): it builds the
// final import object from every committed batch, stores it, and publishes the
// terminal event. Called twice, it publishes the stored object again under the
// same event id, so subscribers see one terminal event.
func (h *Harness) Finish(ctx context.Context, opts events.Options, status events.Status, reason string) error {
	var imp events.Import
	err := h.getJSON(ctx, imports.TerminalKey(opts.ID), &imp)
	switch {
	case err == nil:
	case errors.Is(err, blob.ErrNotFound):
		imp, err = h.Build(ctx, opts)
		if err != nil {
			return err
		}
		imports.Finish(&imp, status, reason, h.Env.now())
		if status == events.StatusInterrupted {
			if req, err := h.interruption(ctx, opts.ID); err == nil && req != nil && req.Kind == "" && req.By != "" {
				imp.UpdatedBy = req.By
			}
		}
		if err := h.putJSON(ctx, imports.TerminalKey(opts.ID), imp); err != nil {
			return err
		}
	default:
		return err
	}
	event := events.TerminalEvent(imp.Status)
	return h.publishEvent(opts, event, opts.ID+":terminal", imp)
}

// Build assembles the import object from the stored initial object and every
// committed batch's stats.
func (h *Harness) Build(ctx context.Context, opts events.Options) (events.Import, error) {
	var imp events.Import
	if err := h.getJSON(ctx, imports.ImportKey(opts.ID), &imp); err != nil {
		if !errors.Is(err, blob.ErrNotFound) {
			return imp, err
		}
		created, ok := imports.IDTime(opts.ID)
		if !ok {
			created = h.Env.now()
		}
		imp = imports.Initial(opts, created)
	}
	list, err := h.Env.Blobs.List(ctx, imports.Prefix(opts.ID))
	if err != nil {
		return imp, err
	}
	pr := imports.Progress{}
	for _, info := range list {
		if !isStatsKey(opts.ID, info.Key) {
			continue
		}
		var st events.BatchProgress
		if err := h.getJSON(ctx, info.Key, &st); err != nil {
			return imp, err
		}
		pr.Add(st)
	}
	imports.Apply(&imp, pr, nil)
	return imp, nil
}

func isStatsKey(id, key string) bool {
	for _, p := range events.Phases {
		prefix := imports.StatsPrefix(id, p)
		if len(key) > len(prefix) && key[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

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
		if err := w.h.afterBatch(ctx, w.job, w.phase, b); err != nil {
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
	in := &Input{key: imports.OutKey(w.job.ID(), Flow[i-1].Phase, b), blobs: w.h.Env.Blobs}
	return in, in.Rewind(ctx)
}

// Input streams the rows of one batch.
type Input struct {
	key   string
	blobs blob.Store
	rc    io.ReadCloser
	dec   *rows.Decoder
	n     int64
}

// Rewind starts the batch again from its first row (and its whole rows): a
// phase may look at a few fields of every row first, and read the rows
// whole only when it must.
func (in *Input) Rewind(ctx context.Context) error {
	if in.rc != nil {
		in.rc.Close()
	}
	rc, err := in.blobs.Get(ctx, in.key)
	if err != nil {
		return fmt.Errorf("open input batch %s: %w", in.key, err)
	}
	in.rc, in.dec, in.n = rc, rows.NewDecoder(rc), 0
	return nil
}

// Next reads the next row; it returns io.EOF after the last.
func (in *Input) Next(r *rows.Row) error {
	*r = rows.Row{}
	if err := in.dec.Decode(r); err != nil {
		return err
	}
	in.n++
	return nil
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
func (in *Input) Only(fields ...string) { in.dec.Only(fields...) }

// Close releases the batch.
func (in *Input) Close() { _ = in.rc.Close() }

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
	Stats    events.BatchProgress
	Internal bool
}

func (h *Harness) newOutput(job *Job, phase string, b int) (*Output, error) {
	rf, err := os.CreateTemp(h.Env.TempDir, "rows-*.batch")
	if err != nil {
		return nil, fmt.Errorf("temp batch file: %w", err)
	}
	jf, err := os.CreateTemp(h.Env.TempDir, "rejects-*.ndjson")
	if err != nil {
		rf.Close()
		os.Remove(rf.Name())
		return nil, fmt.Errorf("temp rejects file: %w", err)
	}
	return &Output{
		h: h, job: job, phase: phase, batch: b,
		rowsF: rf, rejF: jf, rowsEnc: rows.NewRowWriter(rf), rejEnc: rows.NewEncoder(jf),
		Stats: events.BatchProgress{ImportID: job.ID(), Phase: phase, Batch: b, BatchesTotal: job.Batches, StartedAt: h.Env.now()},
	}, nil
}

// PassThrough passes the input batch on as it is, every row unchanged:
// stored as a copy of the input (a hard link, a server-side copy), never
// decoded and encoded again. The rest of in is read (steps over each row) to
// count it. Nothing may have been emitted, rejected or skipped.
func (o *Output) PassThrough(in *Input) error {
	if o.Stats.RowsOut+o.Stats.RowsFailed+o.Stats.Skipped+o.Stats.Warnings > 0 {
		return errors.New("pass-through of a batch that already has output")
	}
	in.Only()
	var r rows.Row
	for {
		if err := in.Next(&r); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
	}
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
	return o.rejEnc.Encode(rej)
}

// Reject takes r out of the import as failed, with its first problem as the
// reason and every problem in the message.
func (o *Output) Reject(r *rows.Row, problems ...rows.Problem) error {
	o.Stats.RowsFailed++
	return o.rejEnc.Encode(o.reject(r, problems, false))
}

// Skip takes r out of the import on purpose (a duplicate, a delete of a
// missing record): reported, counted as skipped.
func (o *Output) Skip(r *rows.Row, p rows.Problem) error {
	o.Stats.Skipped++
	return o.rejEnc.Encode(o.reject(r, []rows.Problem{p}, true))
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
	if err := o.rejEnc.Flush(); err != nil {
		return err
	}
	id := o.job.ID()
	if o.passFrom != "" {
		if err := blob.Copy(ctx, o.h.Env.Blobs, o.passFrom, imports.OutKey(id, o.phase, o.batch)); err != nil {
			return fmt.Errorf("pass %s on: %w", o.passFrom, err)
		}
	} else if err := o.upload(ctx, o.rowsF, imports.OutKey(id, o.phase, o.batch)); err != nil {
		return err
	}
	return o.upload(ctx, o.rejF, imports.RejectsKey(id, o.phase, o.batch))
}

func (o *Output) commitStats(ctx context.Context) error {
	id := o.job.ID()
	o.Stats.CompletedAt = o.h.Env.now()
	// The stats object is written last: its presence means the batch is committed.
	return o.h.putJSON(ctx, imports.StatsKey(id, o.phase, o.batch), o.Stats)
}

func (o *Output) logCommitted() {
	log := o.h.Env.Log.With().Str("import_id", o.job.ID()).Str("phase", o.phase).Int("batch", o.batch).Logger()
	log.Info().Int64("rows_in", o.Stats.RowsIn).Int64("rows_out", o.Stats.RowsOut).
		Int64("rows_failed", o.Stats.RowsFailed).Int64("skipped", o.Stats.Skipped).Msg("batch committed")
}

func (o *Output) upload(ctx context.Context, f *os.File, key string) error {
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := o.h.Env.Blobs.Put(ctx, key, f, size); err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	return nil
}

func (o *Output) discard() {
	for _, f := range []*os.File{o.rowsF, o.rejF} {
		f.Close()
		os.Remove(f.Name())
	}
}
