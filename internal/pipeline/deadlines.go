package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
)

// Imports pages through the imports as reads show them (*projector.Projector
// is one, wired by the composition root).
type Imports interface {
	// ListImports returns up to limit imports of status, newest first,
	// created before the import id before (all when empty).
	ListImports(ctx context.Context, status events.Status, before string, limit int) ([]events.Import, error)
}

// Finisher ends imports (*Harness is one).
type Finisher interface {
	Finish(ctx context.Context, opts events.Options, status events.Status, reason string) error
	// TimeOut asks a running import to stop at its next batch boundary and
	// ends it outright once grace has passed.
	TimeOut(ctx context.Context, opts events.Options, reason string, grace time.Duration) error
	// Redrive hands the import's committed work on again (false: nothing
	// could be handed on yet).
	Redrive(ctx context.Context, opts events.Options) (bool, error)
}

// Deadlines ends the imports whose time is up, whatever else is running: an
// import still requested at its expires_at ends expired, one not finished by
// its deadline ends timed_out. It reads the views, so it runs beside the
// projector and needs no phase service; two replicas finishing the same
// import publish the same terminal event id, which JetStream deduplicates.
type Deadlines struct {
	Imports  Imports
	Finisher Finisher
	Log      zerolog.Logger
	// ImportTimeout is the deadline of an import that did not choose one,
	// counted from its creation.
	ImportTimeout time.Duration
	// UploadTTL is how long an import created without its file waits for it,
	// when the import object carries no expires_at.
	UploadTTL time.Duration
	// Grace is how long a running import past its deadline gets to stop at a
	// batch boundary (exact stats) before it is ended outright.
	Grace time.Duration
	// StallAfter is how long an import may go without any event before it
	// counts as stalled (INLET_STALL_AFTER; 0 turns the check off). A
	// stalled import is handed its work again (Redrive); one still stalled
	// StallAfter later, with no phase holding or waiting for any work at both
	// looks (WorkIdle), can never move again and ends failed.
	StallAfter time.Duration
	WorkIdle   func(context.Context) (bool, error)
	// Changes forgets what imports created more than RevertWindow ago
	// changed (nil, or a zero window, keeps everything).
	Changes      ChangePruner
	RevertWindow time.Duration
	Now          func() time.Time

	mu     sync.Mutex
	stalls map[string]*stall
}

// stall is what the sweep saw of an import that stopped moving.
type stall struct {
	moved  time.Time // the import's last event then
	looked time.Time // the sweep's last look
	idle   int       // looks at which no work was held or waiting
}

// Run checks every interval until ctx ends.
func (d *Deadlines) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := d.Sweep(ctx); err != nil && ctx.Err() == nil {
			d.Log.Warn().Err(err).Msg("deadline sweep failed; retrying next tick")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep ends every import whose time is up and reports the first error.
func (d *Deadlines) Sweep(ctx context.Context) error {
	now := time.Now().UTC()
	if d.Now != nil {
		now = d.Now().UTC()
	}
	var first error
	seen := map[string]bool{}
	defer d.forgetStalls(seen)
	for _, status := range []events.Status{events.StatusRequested, events.StatusQueued, events.StatusProcessing} {
		before := ""
		for {
			list, err := d.Imports.ListImports(ctx, status, before, 500)
			if err != nil {
				return err
			}
			for _, imp := range list {
				seen[imp.ID] = true
				if err := d.check(ctx, imp, now); err != nil && first == nil {
					first = err
				}
			}
			if len(list) < 500 {
				break
			}
			before = list[len(list)-1].ID
		}
	}
	if err := d.pruneChanges(ctx, now); err != nil && first == nil {
		first = err
	}
	return first
}

// ChangePruner forgets the changes imports made (store.RecordStore).
type ChangePruner interface {
	PruneChanges(ctx context.Context, before time.Time, limit int) (int64, bool, error)
}

// pruneChanges forgets the changes kept longer than the revert window and
// the longest a revert accepted at its end may run (the import timeout and
// its grace), a bounded amount a sweep so the sweep is never held up (and,
// on SQLite, the one writer is not kept from imports for long).
func (d *Deadlines) pruneChanges(ctx context.Context, now time.Time) error {
	if d.Changes == nil || d.RevertWindow <= 0 {
		return nil
	}
	const perCall, perSweep = 5000, 20
	before := now.Add(-d.RevertWindow - d.ImportTimeout - d.Grace)
	for range perSweep {
		n, done, err := d.Changes.PruneChanges(ctx, before, perCall)
		if err != nil {
			return err
		}
		if n > 0 {
			d.Log.Info().Int64("changes", n).Dur("revert_window", d.RevertWindow).Msg("forgot the changes of an import past its revert window")
		}
		if done {
			return nil
		}
	}
	return nil
}

func (d *Deadlines) check(ctx context.Context, imp events.Import, now time.Time) error {
	if imp.Status.Terminal() {
		return nil
	}
	var status events.Status
	var reason string
	switch {
	case imp.Status == events.StatusRequested && imp.File.Name == "":
		// Waiting for its file (created from options alone).
		expires := imp.CreatedAt.Add(d.UploadTTL)
		if imp.ExpiresAt != nil {
			expires = *imp.ExpiresAt
		}
		if d.UploadTTL <= 0 && imp.ExpiresAt == nil || now.Before(expires) {
			return nil
		}
		status, reason = events.StatusExpired, "no file was uploaded before expires_at ("+expires.Format(time.RFC3339)+")"
	default:
		deadline := imp.CreatedAt.Add(d.ImportTimeout)
		if imp.Deadline != nil {
			deadline = *imp.Deadline
		}
		if d.ImportTimeout <= 0 && imp.Deadline == nil {
			return d.checkStall(ctx, imp, now)
		}
		if now.Before(deadline) {
			return d.checkStall(ctx, imp, now)
		}
		reason := "the import did not finish by its deadline (" + deadline.Format(time.RFC3339) + ")"
		d.Log.Info().Str("import_id", imp.ID).Msg(reason)
		return d.Finisher.TimeOut(ctx, imp.Options, reason, d.Grace)
	}
	d.Log.Info().Str("import_id", imp.ID).Str("status", string(status)).Msg(reason)
	return d.Finisher.Finish(ctx, imp.Options, status, reason)
}

// checkStall hands a stalled import its work again, and ends it once it has
// stayed stalled with nothing in any phase's hands or queue.
func (d *Deadlines) checkStall(ctx context.Context, imp events.Import, now time.Time) error {
	if d.StallAfter <= 0 || d.WorkIdle == nil {
		return nil
	}
	moved := imp.UpdatedAt
	if moved.IsZero() {
		moved = imp.CreatedAt
	}
	d.mu.Lock()
	if d.stalls == nil {
		d.stalls = map[string]*stall{}
	}
	s := d.stalls[imp.ID]
	if now.Sub(moved) < d.StallAfter {
		delete(d.stalls, imp.ID)
		d.mu.Unlock()
		return nil
	}
	if s == nil || !s.moved.Equal(moved) {
		s = &stall{moved: moved}
		d.stalls[imp.ID] = s
	}
	if !s.looked.IsZero() && now.Sub(s.looked) < d.StallAfter {
		d.mu.Unlock()
		return nil
	}
	s.looked = now
	d.mu.Unlock()

	idle, err := d.WorkIdle(ctx)
	if err != nil {
		return err
	}
	opts := imp.Options
	log := d.Log.With().Str("import_id", imp.ID).Time("last_event", moved).Bool("work_idle", idle).Logger()
	if idle {
		d.mu.Lock()
		s.idle++
		looks := s.idle
		d.mu.Unlock()
		if looks >= 2 {
			reason := fmt.Sprintf("the import stopped moving: no event for %s, and no phase held or awaited any work, even after its work was handed on again", now.Sub(moved).Round(time.Second))
			log.Error().Msg("import failed: " + reason)
			return d.Finisher.Finish(ctx, opts, events.StatusFailed, reason)
		}
	}
	handed, err := d.Finisher.Redrive(ctx, opts)
	log.Warn().Err(err).Bool("handed_on", handed).Msg("import stalled: its work was handed on again")
	return err
}

// forgetStalls drops what the sweep remembered of imports it no longer saw
// running (they ended).
func (d *Deadlines) forgetStalls(seen map[string]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id := range d.stalls {
		if !seen[id] {
			delete(d.stalls, id)
		}
	}
}
