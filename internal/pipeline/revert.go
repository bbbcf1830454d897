package pipeline

import (
	"context"
	"errors"
	"io"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/rows"
)

// revertPage is how many record ids the intake reads at a time while it
// lists what a revert puts back.
const revertPage = 5000

// revertSource checks that the parent of a revert can be reverted and lists
// what the revert puts back as its file: the id of every record the parent
// changed (the store kept each change: store.Change), one {"id": …} a line,
// written once — the parent has finished, so a redelivery lists the same.
func (h *Harness) revertSource(ctx context.Context, job *Job, req events.ImportRequested) (events.Source, error) {
	opts := &job.Options
	parentID := opts.ParentImportID
	if req.Source != nil || len(req.Inputs) > 0 {
		return events.Source{}, Fatal("a revert has no file: it puts back what import %s changed", parentID)
	}
	var parent events.Import
	err := h.getJSON(ctx, imports.TerminalKey(parentID), &parent)
	switch {
	case errors.Is(err, blob.ErrNotFound) || err == nil && parent.OrganizationID != opts.OrganizationID:
		return events.Source{}, Fatal("parent_import_id: import %s is not a finished import of organization %s: only one can be reverted",
			parentID, opts.OrganizationID)
	case err != nil:
		return events.Source{}, err
	case parent.Resource != opts.Resource || parent.Mode != opts.Mode:
		return events.Source{}, Fatal("parent_import_id: import %s imported %s in %s mode, not %s in %s mode",
			parentID, parent.Resource, parent.Mode, opts.Resource, opts.Mode)
	}
	opts.Format = events.FormatJSONL
	const name = "revert.jsonl"
	src := events.Source{Key: imports.SourceKey(opts.ID, name), Name: name, ContentType: "application/x-ndjson"}
	if _, err := h.Env.Blobs.Stat(ctx, src.Key); err == nil {
		return src, nil // an earlier delivery accepted it
	} else if !errors.Is(err, blob.ErrNotFound) {
		return src, err
	}
	// Judged at the revert's creation (the time in its id), as the gateway
	// judged it: a redelivery later gives the same answer.
	at := h.Env.now()
	if created, ok := imports.IDTime(opts.ID); ok {
		at = created
	}
	if no := imports.CheckRevertible(parent, h.Env.RevertWindow, at); no != nil {
		return events.Source{}, Fatal("parent_import_id: %s", no.Message)
	}
	pr, pw := io.Pipe()
	go func() {
		enc := rows.NewEncoder(pw)
		for after := ""; ; {
			ids, err := h.Env.Records.ChangedIDs(ctx, job.Scope(), parentID, after, revertPage)
			if err != nil || len(ids) == 0 {
				if err == nil {
					err = enc.Flush()
				}
				pw.CloseWithError(err)
				return
			}
			for _, id := range ids {
				if err := enc.Encode(struct {
					ID string `json:"id"`
				}{id}); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			after = ids[len(ids)-1]
		}
	}()
	return src, h.Env.Blobs.Put(ctx, src.Key, pr, -1)
}
