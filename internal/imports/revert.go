package imports

import (
	"fmt"
	"time"

	"github.com/inlet-dev/inlet/events"
)

// Why an import cannot be reverted (RevertRefusal.Code).
const (
	RevertNotFinished  = "not_finished"
	RevertNothing      = "nothing_to_revert"
	RevertWindowPassed = "revert_window_passed"
)

// RevertRefusal says why an import cannot be reverted.
type RevertRefusal struct{ Code, Message string }

func (r *RevertRefusal) Error() string { return r.Message }

// CheckRevertible is the rule for reverting parent at now: it has ended,
// changed something (not a dry run), and was created within window (the
// store keeps an import's changes that long; 0 keeps them for ever).
func CheckRevertible(parent events.Import, window time.Duration, now time.Time) *RevertRefusal {
	switch {
	case !parent.Status.Terminal():
		return &RevertRefusal{RevertNotFinished, fmt.Sprintf("import %s is %s: only a finished import can be reverted", parent.ID, parent.Status)}
	case parent.DryRun:
		return &RevertRefusal{RevertNothing, fmt.Sprintf("import %s was a dry run: it changed nothing", parent.ID)}
	case window > 0 && now.Sub(parent.CreatedAt) > window:
		return &RevertRefusal{RevertWindowPassed, fmt.Sprintf("import %s was created %s, more than %s ago: what it changed is no longer kept",
			parent.ID, parent.CreatedAt.UTC().Format(time.RFC3339), window)}
	}
	return nil
}
