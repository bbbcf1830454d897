package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/decode"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/rows"
)

// MaxSyncErrors is how many failed rows a sync create lists.
const MaxSyncErrors = 20

// Prevalidation is the answer's member of an upload_mode sync create.
type Prevalidation = events.Prevalidation

// RowError is one failed row of a sync prevalidation.
type RowError = events.PrevalidationError

// readErr remembers an error of the stored file's reader, so a failure of the
// blob store is not blamed on the file.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// prevalidate streams the stored file through the decoder, the column
// mapping and Prepare, holding one row (and MaxSyncErrors failed rows) at a
// time. A problem with the file as a whole (decode.FileError: unreadable,
// bad header, column_mapping that does not fit) is a 422 invalid_file.
func (g *Gateway) prevalidate(ctx context.Context, in *createInput, res *resources.Resource) (*Prevalidation, error) {
	rc, err := g.cfg.Blobs.Get(ctx, in.up.key)
	if err != nil {
		return nil, fmt.Errorf("prevalidate: open %s: %w", in.up.key, err)
	}
	defer rc.Close()
	src := &readErr{r: rc}
	pv, err := decode.NewPrevalidator(src, in.opts, res, "")
	if err != nil {
		return nil, fileProblem(err, src, in.opts.Format)
	}
	defer pv.Close() // a spooled XLSX file
	// The import object the create answers with reports the mapping, as the
	// pipeline's will once prevalidation has read the file.
	in.columns, in.unmapped = pv.Report()
	type prepared struct {
		row      rows.Row
		problems []rows.Problem
	}
	out := &Prevalidation{Errors: []RowError{}}
	err = decode.InParallel(ctx, pv, func(rec decode.Record) (p prepared) {
		p.row, p.problems = pv.Prepare(rec)
		return p
	}, func(p *prepared) error {
		out.Total++
		if len(p.problems) == 0 {
			out.Valid++
			return nil
		}
		out.Failed++
		if len(out.Errors) == MaxSyncErrors {
			out.Truncated = true
			return nil
		}
		first := rows.Summary(p.problems)
		out.Errors = append(out.Errors, RowError{Row: p.row.Num, Code: first.Code, Field: first.Field, Message: first.Message})
		return nil
	})
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	if err != nil {
		return nil, fileProblem(err, src, in.opts.Format)
	}
	return out, nil
}

// fileProblem turns a decoding failure into the client's error, unless the
// blob store failed underneath.
func fileProblem(err error, src *readErr, format events.Format) error {
	if src.err != nil {
		return fmt.Errorf("prevalidate: read the stored file: %w", src.err)
	}
	var fe *decode.FileError
	if errors.As(err, &fe) {
		d := map[string]any{"field": "file", "code": fe.Code}
		if fe.Row > 0 {
			d["row"] = fe.Row
		}
		if fe.Line > 0 {
			d["line"] = fe.Line
		}
		if fe.Unmapped != nil {
			d["unmapped_headers"] = fe.Unmapped
		}
		return &apiError{status: http.StatusUnprocessableEntity, code: "invalid_file", message: fe.Error(), details: d}
	}
	// Not a problem of this file: the decoder cannot prevalidate the format
	// inside a request.
	return &apiError{status: http.StatusUnprocessableEntity, code: "sync_not_supported",
		message: fmt.Sprintf("upload_mode sync cannot prevalidate this file (%v); use upload_mode async", err),
		details: map[string]any{"field": "upload_mode", "format": format}}
}
