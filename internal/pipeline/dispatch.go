package pipeline

// Dispatch: the handlers of work messages, and what follows a committed
// batch (progress, the next phase's work) and a completed phase (its event,
// the barrier, the gate, the end).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/topology"
)

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
		trace.SpanFromContext(ctx).SetAttributes(attribute.String("inlet.import_id", wm.Options.ID),
			attribute.String("inlet.phase", p.Name()), attribute.Int("inlet.batch", wm.Batch))
		if wm.Batch == AllBatches && h.Env.Delivery != nil && h.Env.Delivery(msg) > 1 {
			resumed, err := h.resumeIfProgressed(ctx, wm)
			if err != nil {
				return &importFailure{opts: wm.Options, log: log, err: err}
			}
			if resumed {
				log.Info().Msg("the work on the whole file went on before this redelivery: a fresh message resumes it")
				return nil
			}
		}
		return h.forImport(ctx, wm.Options, log, func(ctx context.Context) error {
			job, err := h.job(wm.Options, wm.Batches, log)
			if err != nil {
				return err
			}
			return h.runWork(ctx, p, job, wm.Batch)
		})
	}
}

// attempt is how many batches of a barrier phase were committed when a
// delivery of its work began.
type attempt struct {
	Committed int `json:"committed"`
}

// resumeIfProgressed hands a redelivered barrier message's work to a fresh
// message when the deliveries before it made progress, and reports whether
// it did (the redelivery is then done). A barrier phase's message carries
// the whole file: each delivery resumes after the batches committed before
// it, but a process killed again and again before the end (a chaos run:
// 1,700 batches, a kill every few seconds) spent the message's deliveries
// while the work advanced, and its import failed as undeliverable. Counting
// deliveries without progress instead keeps that bound for work that never
// advances. The fresh message's id names the progress, so replicas that
// resume the same progress publish one message.
func (h *Harness) resumeIfProgressed(ctx context.Context, wm WorkMessage) (bool, error) {
	id := wm.Options.ID
	list, err := h.Env.Blobs.List(ctx, imports.StatsPrefix(id, wm.Phase))
	if err != nil {
		return false, err
	}
	now := attempt{Committed: len(list)}
	var before attempt
	switch err := h.getJSON(ctx, imports.AttemptKey(id, wm.Phase), &before); {
	case err == nil && now.Committed > before.Committed && now.Committed < wm.Batches:
		msgID := fmt.Sprintf("%s:work:%s:all:resume:%d", id, wm.Phase, now.Committed)
		if err := h.sendWork(ctx, wm, msgID); err != nil {
			return false, err
		}
		return true, h.putJSON(ctx, imports.AttemptKey(id, wm.Phase), now)
	case err != nil && !errors.Is(err, blob.ErrNotFound):
		return false, err
	}
	return false, h.putJSON(ctx, imports.AttemptKey(id, wm.Phase), now)
}

// forImport runs fn for one message of import opts, skipping the messages
// of a finished import; a failure comes back marked with the import, for
// DeliveryPolicy.
func (h *Harness) forImport(ctx context.Context, opts events.Options, log zerolog.Logger, fn func(context.Context) error) error {
	if _, err := h.Env.Blobs.Stat(ctx, imports.TerminalKey(opts.ID)); err == nil {
		log.Debug().Msg("import already finished; message ignored")
		return nil
	}
	err := h.untilStopped(ctx, opts.ID, fn)
	if errors.Is(err, errStopRequested) {
		// A stop request cut the work short inside a batch: run it again,
		// and its batch boundary commits what is left empty, as it would
		// have at the next boundary.
		log.Info().Msg("stop requested during a batch: the work ends at its boundary")
		err = fn(ctx)
	}
	if err != nil {
		return &importFailure{opts: opts, log: log, err: err}
	}
	return nil
}

// errStopRequested is the cause of a handler's context cancelled because
// its import was asked to stop.
var errStopRequested = errors.New("the import was asked to stop")

// untilStopped runs fn with a context that ends when import id is asked to
// stop (looked for every Env.StopPoll); fn's error is then errStopRequested.
func (h *Harness) untilStopped(ctx context.Context, id string, fn func(context.Context) error) error {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		t := time.NewTicker(h.Env.StopPoll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if stop, err := (blobBatches{h}).interrupted(wctx, id); err == nil && stop {
					cancel(errStopRequested)
					return
				}
			}
		}
	}()
	err := fn(wctx)
	close(done)
	<-watched
	if err != nil && errors.Is(context.Cause(wctx), errStopRequested) && ctx.Err() == nil {
		return errStopRequested
	}
	return err
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
	batches := []int{batch}
	if batch == AllBatches {
		batches = make([]int, job.Batches)
		for b := range batches {
			batches[b] = b
		}
	}
	w := h.newWork(blobBatches{h}, job, p.Name(), batches)
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
		if err := h.afterBatch(ctx, job, p.Name(), b, nil); err != nil {
			return err
		}
	}
	mine := func(b int) bool { return slices.Contains(w.batches, b) }
	return h.afterPhaseIfDone(ctx, job, p.Name(), mine)
}

// streamsInto reports whether the next phase takes batch b of phase as soon
// as it is committed: a PerBatch phase always, a Gated one when there is no
// threshold to check first (skip_errors); a user's interrupt still stops it
// at its next batch boundary.
func streamsInto(job *Job, entry Entry) bool {
	return entry == PerBatch || entry == Gated && job.Options.SkipErrors
}

// afterBatch publishes the batch's progress and, for a streaming next phase,
// its work. st is the batch's stats when the caller has them (it committed
// them), else nil: they are read back.
func (h *Harness) afterBatch(ctx context.Context, job *Job, phase string, b int, st *events.BatchProgress) error {
	if err := h.publishProgress(ctx, job, phase, b, st); err != nil {
		return err
	}
	if nextPhase, entry, ok := next(phase); ok && streamsInto(job, entry) {
		return h.publishWork(ctx, job, nextPhase, b)
	}
	return nil
}

// afterPhaseIfDone checks whether every batch of phase is committed and, if
// so, announces it and hands the import to what comes next. Each replica
// checks after its own commit; the last committer always sees them all, and
// two that both see them publish the same message ids, which JetStream dedups.
//
// handedOn reports the batches the caller has handed on itself. Any other
// batch may have been committed by a process that died before its progress
// event; its message's redelivery hands it on, but when nothing after the
// phase waits for that batch's work message (a barrier, a gate, the end) the
// import can end before the redelivery comes (TestKillPhaseMidImport saw it),
// so those progress events are published here, before the phase's
// completion, under the same message ids.
func (h *Harness) afterPhaseIfDone(ctx context.Context, job *Job, phase string, handedOn func(b int) bool) error {
	// Batches commit roughly in order, so until the last one has, the phase
	// is surely not done: one small request instead of listing every stats
	// object of the phase after every batch (a tenth of MinIO's CPU).
	if last := job.Batches - 1; last > 0 && !handedOn(last) {
		if _, err := h.Env.Blobs.Stat(ctx, imports.StatsKey(job.ID(), phase, last)); errors.Is(err, blob.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
	}
	list, err := h.Env.Blobs.List(ctx, imports.StatsPrefix(job.ID(), phase))
	if err != nil {
		return fmt.Errorf("list %s stats: %w", phase, err)
	}
	if len(list) < job.Batches {
		return nil
	}
	if _, entry, ok := next(phase); !ok || !streamsInto(job, entry) {
		if err := h.republishProgress(ctx, job, phase, handedOn); err != nil {
			return err
		}
	}
	if _, err := h.phaseSums(ctx, job.ID(), phase, list); err != nil {
		return err
	}
	pc := events.PhaseCompleted{ImportID: job.ID(), Phase: phase, BatchesTotal: job.Batches, CompletedAt: h.Env.now()}
	if err := h.publishEvent(ctx, job.Options, events.EventPhaseCompleted, fmt.Sprintf("%s:phase_completed:%s", job.ID(), phase), pc); err != nil {
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
		return h.publishWork(ctx, job, nextPhase, AllBatches)
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
			if err := h.publishWork(ctx, job, nextPhase, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// republishProgress publishes again the progress of the batches of phase
// that handedOn does not name, reading their stats several at once (one
// after another, they held the next phase back by a request each).
func (h *Harness) republishProgress(ctx context.Context, job *Job, phase string, handedOn func(b int) bool) error {
	stats := make([]*events.BatchProgress, job.Batches)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(statsAtOnce)
	for b := range job.Batches {
		if handedOn(b) {
			continue
		}
		g.Go(func() error {
			st, err := h.readStats(gctx, job.ID(), phase, b)
			stats[b] = &st
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for b, st := range stats {
		if st == nil {
			continue
		}
		if err := h.publishProgress(ctx, job, phase, b, st); err != nil {
			return err
		}
	}
	return nil
}

func (h *Harness) publishProgress(ctx context.Context, job *Job, phase string, b int, st *events.BatchProgress) error {
	if st == nil {
		read, err := h.readStats(ctx, job.ID(), phase, b)
		if err != nil {
			return err
		}
		st = &read
	}
	return h.publishEvent(ctx, job.Options, events.EventProgress, fmt.Sprintf("%s:progress:%s:%d", job.ID(), phase, b), *st)
}

func (h *Harness) publishWork(ctx context.Context, job *Job, phase string, b int) error {
	wm := WorkMessage{Options: job.Options, Phase: phase, Batch: b, Batches: job.Batches}
	return h.sendWork(ctx, wm, fmt.Sprintf("%s:work:%s:%d", job.ID(), phase, b))
}

// sendWork publishes wm under msgID on its phase's work subject, the
// express one for an import of one batch.
func (h *Harness) sendWork(ctx context.Context, wm WorkMessage, msgID string) error {
	body, err := json.Marshal(wm)
	if err != nil {
		return err
	}
	subject := topology.WorkSubject(wm.Phase)
	if wm.Batches <= 1 {
		subject = topology.ExpressSubject(wm.Phase)
	}
	return h.Env.Pub.Publish(ctx, subject, msgID, body)
}
