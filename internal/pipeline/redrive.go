package pipeline

import (
	"context"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/imports"
)

// Redrive hands an import's work on again from what the blob store says was
// committed: the next phase's work for every committed batch, each completed
// phase's event and what follows it (a barrier's work, the gate, the end).
// Every message keeps its original id, so JetStream drops those it still
// holds and only work that was lost (a broker that crashed before it synced,
// a publish that never happened) is sent again; handlers are idempotent, so a
// message sent twice outside the duplicate window costs time, not
// correctness. It reports whether anything could be handed on: nothing can
// before the intake has committed every batch of the file.
func (h *Harness) Redrive(ctx context.Context, opts events.Options) (bool, error) {
	n, err := h.committedBatches(ctx, opts.ID, events.PhasePrevalidation)
	if err != nil || n == 0 {
		return false, err
	}
	job, err := h.job(opts, n, h.Env.Log.With().Str("import_id", opts.ID).Logger())
	if err != nil {
		return false, err
	}
	for _, step := range Flow {
		list, err := h.Env.Blobs.List(ctx, imports.StatsPrefix(opts.ID, step.Phase))
		if err != nil {
			return false, err
		}
		committed := make(map[int]bool, len(list))
		for _, info := range list {
			if b, ok := imports.StatsBatch(opts.ID, step.Phase, info.Key); ok {
				committed[b] = true
			}
		}
		if nextPhase, entry, ok := next(step.Phase); ok && streamsInto(job, entry) {
			for b := range committed {
				if err := h.publishWork(ctx, job, nextPhase, b); err != nil {
					return false, err
				}
			}
		}
		if len(committed) < n {
			continue // later phases may still have committed batches to hand on
		}
		if err := h.afterPhaseIfDone(ctx, job, step.Phase, func(int) bool { return true }); err != nil {
			return false, err
		}
	}
	return true, nil
}
