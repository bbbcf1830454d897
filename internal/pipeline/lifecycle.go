package pipeline

// Lifecycle: how an import ends. Interrupts and deadlines stop it at a batch
// boundary, the gate stops it before processing, settle counts what the store
// applied, Finish writes the terminal object and event.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/topology"
)

// stopRequest is what the blob store keeps at imports.InterruptKey: a
// user's interrupt or a passed deadline. Its presence makes every phase stop
// at its next batch boundary.
type stopRequest struct {
	events.Interrupt
	// Kind is empty for a user's interrupt; kindDeadline when the import's
	// deadline passed (it then ends timed_out, not interrupted).
	Kind string `json:"kind,omitempty"`
}

// kindDeadline marks the stop request of an import whose deadline passed.
const kindDeadline = "deadline"

// status is the terminal status the request ends its import with.
func (r *stopRequest) status() events.Status {
	if r.Kind == kindDeadline {
		return events.StatusTimedOut
	}
	return events.StatusInterrupted
}

// ErrFinished says the import had already ended.
var ErrFinished = errors.New("the import has already ended")

// RequestInterrupt asks import opts.ID to stop. An import that has not started
// processing ends at once; a running one stops at its next batch boundary and
// its stats count what was applied.
func (h *Harness) RequestInterrupt(ctx context.Context, opts events.Options, req events.Interrupt) error {
	return h.requestStop(ctx, opts, stopRequest{Interrupt: req})
}

func (h *Harness) requestStop(ctx context.Context, opts events.Options, req stopRequest) error {
	if _, err := h.Env.Blobs.Stat(ctx, imports.TerminalKey(opts.ID)); err == nil {
		return ErrFinished
	}
	req.ImportID = opts.ID
	if req.RequestedAt.IsZero() {
		req.RequestedAt = h.Env.now()
	}
	if cur, err := h.interruption(ctx, opts.ID); err != nil {
		return err
	} else if cur == nil {
		if err := h.putJSON(ctx, imports.InterruptKey(opts.ID), req); err != nil {
			return err
		}
	}
	var imp events.Import
	err := h.getJSON(ctx, imports.ImportKey(opts.ID), &imp)
	if errors.Is(err, blob.ErrNotFound) || (err == nil && imp.Status != events.StatusProcessing) {
		// Nothing is running that would notice the request: end it here.
		status, reason, err := h.stopStatus(ctx, opts.ID)
		if err != nil {
			return err
		}
		return h.Finish(ctx, opts, status, reason)
	}
	return err
}

// TimeOut stops an import whose deadline passed. A running import is asked to
// stop at its next batch boundary, so its stats count exactly what was
// applied; if it has not ended grace later (its phase services are down),
// it is ended here. The sweep calls it on every pass.
func (h *Harness) TimeOut(ctx context.Context, opts events.Options, reason string, grace time.Duration) error {
	req, err := h.interruption(ctx, opts.ID)
	if err != nil {
		return err
	}
	if req == nil {
		err := h.requestStop(ctx, opts, stopRequest{Interrupt: events.Interrupt{Reason: reason}, Kind: kindDeadline})
		if errors.Is(err, ErrFinished) {
			return nil
		}
		return err
	}
	if h.Env.now().Sub(req.RequestedAt) < grace {
		return nil
	}
	if err := h.settle(ctx, opts); err != nil {
		return err
	}
	status, why, err := h.stopStatus(ctx, opts.ID)
	if err != nil {
		return err
	}
	return h.Finish(ctx, opts, status, why+" (its phases did not stop within "+grace.String()+")")
}

// interruption returns the stored interrupt request, or nil.
func (h *Harness) interruption(ctx context.Context, id string) (*stopRequest, error) {
	var req stopRequest
	err := h.getJSON(ctx, imports.InterruptKey(id), &req)
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &req, nil
}

// stopStatus is the terminal status and reason a stored stop request ends the
// import with; status is empty when none was requested.
func (h *Harness) stopStatus(ctx context.Context, id string) (events.Status, string, error) {
	req, err := h.interruption(ctx, id)
	if err != nil || req == nil {
		return "", "", err
	}
	if req.Kind == kindDeadline {
		return req.status(), req.Reason, nil
	}
	reason := "interrupted on request"
	if req.By != "" {
		reason += " of " + req.By
	}
	if req.Reason != "" {
		reason += ": " + req.Reason
	}
	return req.status(), reason, nil
}

// InterruptHandler consumes the interrupt commands clients publish.
func (h *Harness) InterruptHandler() message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		subject := msg.Metadata.Get(topology.MetaSubject)
		org, resource, _, err := events.ParseSubject(subject)
		if err != nil {
			h.Env.Log.Error().Err(err).Msg("dropping interrupt on a malformed subject")
			return nil
		}
		ce, err := events.Decode(msg.Payload)
		var req events.Interrupt
		if err == nil {
			err = json.Unmarshal(ce.Data, &req)
		}
		if err == nil && req.ImportID == "" {
			req.ImportID = ce.Subject
		}
		if err != nil || req.ImportID == "" {
			h.Env.Log.Error().Err(err).Str("subject", subject).Msg("dropping interrupt without an import id")
			return nil
		}
		opts, err := h.optionsOf(msg.Context(), req.ImportID, org, resource)
		if err != nil {
			return err
		}
		if opts == nil {
			h.Env.Log.Warn().Str("import_id", req.ImportID).Str("subject", subject).Msg("interrupt for an unknown import (or another organization's) ignored")
			return nil
		}
		err = h.RequestInterrupt(msg.Context(), *opts, req)
		if errors.Is(err, ErrFinished) {
			return nil
		}
		return err
	}
}

// optionsOf finds the options of an import of org/resource; nil when there is
// no such import (an id of another organization counts as none).
func (h *Harness) optionsOf(ctx context.Context, id, org, resource string) (*events.Options, error) {
	var imp events.Import
	err := h.getJSON(ctx, imports.ImportKey(id), &imp)
	if err == nil {
		if imp.OrganizationID != org || imp.Resource != resource {
			return nil, nil
		}
		return &imp.Options, nil
	}
	if !errors.Is(err, blob.ErrNotFound) {
		return nil, err
	}
	// Not started yet: the stored request (signed-upload path) knows it.
	var req events.ImportRequested
	err = h.getJSON(ctx, imports.RequestKey(id), &req)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if req.OrganizationID != org || req.Resource != resource {
		return nil, nil
	}
	o := req.Options
	o.ID = id
	_ = imports.Normalize(&o)
	return &o, nil
}

// gate decides, once every row has been checked and before anything is
// written, whether the import may go on to processing.
func (h *Harness) gate(ctx context.Context, job *Job) (events.Status, string, error) {
	if status, reason, err := h.stopStatus(ctx, job.ID()); err != nil || status != "" {
		return status, reason, err
	}
	if job.Options.SkipErrors {
		return "", "", nil
	}
	imp, err := h.Build(ctx, job.Options)
	if err != nil {
		return "", "", err
	}
	threshold := job.Options.Threshold()
	st := imp.Stats
	if st.Total > 0 && float64(st.Failed) > threshold*float64(st.Total) {
		return events.StatusInterrupted, fmt.Sprintf("error threshold exceeded: %d of %d rows failed (%.1f%%), more than the %.1f%% allowed; nothing was written (fix the rows in errors.csv, or set skip_errors to import the valid ones)",
			st.Failed, st.Total, 100*float64(st.Failed)/float64(st.Total), 100*threshold), nil
	}
	return "", "", nil
}

// settle commits the processing batches the store applied but whose stats
// were never written (their process died between the two): re-running
// processing replays the stored result, so the import ends counting every
// row that was written, once.
func (h *Harness) settle(ctx context.Context, opts events.Options) error {
	if h.Env.Settle == nil || h.Env.Records == nil {
		return nil
	}
	n, err := h.committedBatches(ctx, opts.ID, events.PhasePrevalidation)
	if err != nil || n == 0 {
		return err
	}
	job, err := h.job(opts, n, h.Env.Log.With().Str("import_id", opts.ID).Str("phase", events.PhaseProcessing).Logger())
	if err != nil {
		return err
	}
	for b := 0; b < n; b++ {
		if _, err := h.Env.Blobs.Stat(ctx, imports.StatsKey(opts.ID, events.PhaseProcessing, b)); err == nil {
			continue
		} else if !errors.Is(err, blob.ErrNotFound) {
			return err
		}
		if _, applied, err := h.Env.Records.Applied(ctx, imports.ProcessingBatchID(opts.ID, b)); err != nil {
			return err
		} else if !applied {
			continue
		}
		w := h.newWork(blobBatches{h}, job, events.PhaseProcessing, []int{b})
		w.settling = true
		if err := h.Env.Settle.Run(ctx, job, w); err != nil {
			return fmt.Errorf("settle processing batch %d: %w", b, err)
		}
	}
	return nil
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
	return h.publishEvent(ctx, opts, event, opts.ID+":terminal", imp)
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
	sums := map[string]*imports.PhaseSums{}
	for _, phase := range events.Phases {
		ps, err := h.phaseSums(ctx, opts.ID, phase, nil)
		if err != nil {
			return imp, err
		}
		if ps != nil {
			sums[phase] = ps
		}
	}
	imports.ApplySums(&imp, sums, nil)
	return imp, nil
}

// phaseSums is what phase's committed batches add up to (nil when none
// committed): read from its sums object once the phase completed, else from
// every batch's stats, several at once (one after another, the stats of a
// 1M-row import held its gate and its end for seconds). Given the listing of
// a completed phase's stats (its completion), it sums them and writes the
// sums object for every later reader.
func (h *Harness) phaseSums(ctx context.Context, id, phase string, completed []blob.Info) (*imports.PhaseSums, error) {
	var ps imports.PhaseSums
	list := completed
	if list == nil {
		if found, err := blob.GetJSON(ctx, h.Env.Blobs, imports.SumsKey(id, phase), &ps); err != nil || found {
			return &ps, err
		}
		var err error
		if list, err = h.Env.Blobs.List(ctx, imports.StatsPrefix(id, phase)); err != nil || len(list) == 0 {
			return nil, err
		}
	}
	stats := make([]events.BatchProgress, len(list))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(statsAtOnce)
	for i, info := range list {
		g.Go(func() error { return h.getJSON(gctx, info.Key, &stats[i]) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, st := range stats {
		ps.Add(st)
	}
	if completed != nil && ps.BatchesTotal > 0 && ps.BatchesDone >= ps.BatchesTotal {
		if err := h.putJSON(ctx, imports.SumsKey(id, phase), ps); err != nil {
			return nil, err
		}
	}
	return &ps, nil
}
