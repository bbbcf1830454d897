package pipeline

import (
	"context"
	"errors"
	"io"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/rejects"
	"github.com/inlet-dev/inlet/internal/textlimit"
)

// retryName is the base name of the file a retry without a file of its own
// reads: its parent's failed rows, written by intake.
const retryName = "retry"

// retry turns the request of a retry (parent_import_id, not a revert) into
// the import it runs: the parent's options with the request's own
// (imports.RetryOptions), and, without a file, a source written from the
// parent's failed rows as they were. Over NATS this is the whole of a retry;
// the gateway's requests arrive with their options merged already, which a
// second merge leaves as they are. A parent that cannot be retried fails the
// request with the reason.
func (h *Harness) retry(ctx context.Context, req *events.ImportRequested) error {
	parent, err := h.retryParent(ctx, req.Options)
	if err != nil {
		return err
	}
	withFile := req.Source != nil || len(req.Inputs) > 0
	req.Options = imports.RetryOptions(parent.Options, req.Options, withFile)
	if withFile {
		return nil
	}
	src, err := h.retrySource(ctx, req.ID, parent.ID)
	if err != nil {
		return err
	}
	req.Source, req.Format = &src, formatOf(src)
	return nil
}

// retryParent is the finished parent of a retry, as its end recorded it.
// Another organization's import is not found, as over HTTP.
func (h *Harness) retryParent(ctx context.Context, o events.Options) (events.Import, error) {
	var parent events.Import
	for _, key := range []string{imports.TerminalKey(o.ParentImportID), imports.ImportKey(o.ParentImportID)} {
		ok, err := blob.GetJSON(ctx, h.Env.Blobs, key, &parent)
		if err != nil {
			return parent, err
		}
		if ok {
			break
		}
	}
	if parent.ID == "" || parent.OrganizationID != o.OrganizationID {
		return parent, Fatal("retry: parent import %s not found in organization %s", textlimit.Quote(o.ParentImportID), o.OrganizationID)
	}
	if parent.Resource != o.Resource {
		return parent, Fatal("retry: parent import %s imported %s, not %s: publish the retry on imports.%s.%s.requested",
			parent.ID, parent.Resource, o.Resource, o.OrganizationID, parent.Resource)
	}
	if perr := imports.CheckRetryParent(parent); perr != nil {
		return parent, Fatal("retry: %s", perr.Message)
	}
	return parent, nil
}

// retrySource writes the parent's failed rows as the retry's file, once: a
// redelivery finds the file of an earlier delivery (the parent has ended,
// so the same rows give the same bytes anyway). The rows stream from the
// parent's rejects into the blob store, one batch of them in memory.
func (h *Harness) retrySource(ctx context.Context, id, parentID string) (events.Source, error) {
	for _, f := range []events.Format{events.FormatCSV, events.FormatJSONL} {
		key := imports.SourceKey(id, retryName+imports.Ext(f))
		if _, err := h.Env.Blobs.Stat(ctx, key); err == nil {
			return retrySourceOf(key, f), nil
		} else if !errors.Is(err, blob.ErrNotFound) {
			return events.Source{}, err
		}
	}
	set, err := rejects.Open(ctx, h.Env.Blobs, parentID)
	if err != nil {
		return events.Source{}, err
	}
	header, err := set.Header(ctx)
	if err != nil {
		return events.Source{}, err
	}
	format := rejects.FailedFormat(header)
	key := imports.SourceKey(id, retryName+imports.Ext(format))
	// Counted first, without writing: a retry with no row to run (the
	// parent's rejects are gone, or every failed row was unreadable) fails
	// with the reason instead of completing empty.
	_, n, unreadable, err := set.WriteFailed(ctx, io.Discard)
	if err != nil {
		return events.Source{}, err
	}
	if n == 0 {
		if unreadable > 0 {
			return events.Source{}, Fatal("retry: the %d failed rows of import %s could not be read as rows of its file (parse.* errors): "+
				"fix them in its errors.csv and retry with that file", unreadable, parentID)
		}
		return events.Source{}, Fatal("retry: import %s keeps no failed rows to run again", parentID)
	}
	if unreadable > 0 {
		h.Env.Log.Warn().Str("import_id", id).Str("parent", parentID).Int64("left_out", unreadable).
			Msg("retry: failed rows the parent could not read are left out; a corrected errors.csv brings them")
	}
	pr, pw := io.Pipe()
	go func() {
		_, _, _, err := set.WriteFailed(ctx, pw)
		pw.CloseWithError(err)
	}()
	if err := h.Env.Blobs.Put(ctx, key, pr, -1); err != nil {
		pr.CloseWithError(err)
		return events.Source{}, err
	}
	return retrySourceOf(key, format), nil
}

func retrySourceOf(key string, f events.Format) events.Source {
	ct := "text/csv"
	if f == events.FormatJSONL {
		ct = "application/x-ndjson"
	}
	return events.Source{Key: key, Name: retryName + imports.Ext(f), ContentType: ct}
}

func formatOf(src events.Source) events.Format {
	if src.ContentType == "application/x-ndjson" {
		return events.FormatJSONL
	}
	return events.FormatCSV
}
