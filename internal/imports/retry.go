package imports

import (
	"fmt"

	"github.com/inlet-dev/inlet/events"
)

// FromParent reports whether an import's rows come from its parent import
// rather than from a file of its own: a revert, and a retry sent without a
// file (its parent's failed rows, as they were). Such a request is queued at
// once; it waits for no upload.
func FromParent(o events.Options) bool { return o.ParentImportID != "" }

// IsRetry reports whether an import runs rows of its parent again (with a
// file of its own or with the parent's failed rows).
func IsRetry(o events.Options) bool {
	return o.ParentImportID != "" && o.Action != events.ActionRevert
}

// RetryParentError says why an import cannot be retried; Status is the HTTP
// status that fits (409 not finished, 422 nothing to retry or a revert).
type RetryParentError struct {
	Status  int
	Code    string
	Message string
}

func (e *RetryParentError) Error() string { return e.Message }

// CheckRetryParent refuses a parent whose failed rows cannot be run again:
// one still running (its rows are not all judged), one without failed rows,
// and a revert (it has no rows of a file: revert the revert instead).
func CheckRetryParent(parent events.Import) *RetryParentError {
	switch {
	case !parent.Status.Terminal():
		return &RetryParentError{409, "not_finished", fmt.Sprintf("import %s has not finished (%s): its failed rows are known once it ends", parent.ID, parent.Status)}
	case parent.Action == events.ActionRevert:
		return &RetryParentError{422, "not_retryable", fmt.Sprintf("import %s is a revert: it has no rows of a file to run again (revert it to undo it)", parent.ID)}
	case parent.Stats.Failed == 0:
		return &RetryParentError{422, "no_failed_rows", fmt.Sprintf("import %s has no failed rows to retry", parent.ID)}
	case parent.Status == events.StatusInterrupted && !processed(parent):
		// Its valid rows were never written either: running its failed
		// rows alone would import a part of the file as if it were whole.
		return &RetryParentError{422, "nothing_written", fmt.Sprintf("import %s stopped before writing anything (%s): "+
			"import its file again (with the failed rows corrected, or skip_errors)", parent.ID, reasonOf(parent))}
	}
	return nil
}

// processed reports whether any of an import's batches reached the store.
func processed(imp events.Import) bool {
	for _, p := range imp.Phases {
		if p.Name == events.PhaseProcessing {
			return p.BatchesDone > 0
		}
	}
	return false
}

func reasonOf(imp events.Import) string {
	if imp.Reason != nil {
		return *imp.Reason
	}
	return string(imp.Status)
}

// RetryOptions are the options of a retry of parent requested with req. The
// retry runs the parent's rows again as the parent would have: it keeps the
// parent's resource, mode, parent_resource_id, duplicate_handling and
// column_mapping (a corrected errors.csv has the parent's columns), and its
// action, but for overwrite, which becomes merge (an overwrite of only the
// failed rows would remove every record the parent just wrote). What is the
// run's own comes from req: its id, name, reference, metadata, deadline,
// skip_errors, error_threshold and dry_run (unset, their defaults: a request
// over NATS cannot tell an option left out from its default). withFile says req brought a file, whose format, sheet and
// delimiter are then req's; without one the retry reads the file its intake
// writes from the parent's rejected rows (format set there). Applying it to
// options it made changes nothing, so the gateway and intake may both.
func RetryOptions(parent events.Options, req events.Options, withFile bool) events.Options {
	o := req
	o.OrganizationID, o.Resource, o.Mode = parent.OrganizationID, parent.Resource, parent.Mode
	o.ParentImportID = parent.ID
	o.Action = parent.Action
	if o.Action == events.ActionOverwrite {
		o.Action = events.ActionMerge
	}
	o.DuplicateHandling = parent.DuplicateHandling
	o.ColumnMapping = parent.ColumnMapping
	o.ParentResourceID = parent.ParentResourceID
	o.Force = false
	if !withFile {
		// The intake writes the failed rows as CSV with commas (or JSONL).
		o.UploadMode = events.UploadAsync
		o.Sheet, o.Delimiter = "", ","
	}
	return o
}
