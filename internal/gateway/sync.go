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
	dopts := decode.Options{Sheet: in.opts.Sheet}
	if d := []rune(in.opts.Delimiter); len(d) == 1 {
		dopts.Delimiter = d[0]
	}
	dec, err := decode.Open(in.opts.Format, src, dopts)
	if err != nil {
		return nil, fileProblem(err, src, in.opts.Format)
	}
	if c, ok := dec.(io.Closer); ok {
		defer c.Close() // a spooled XLSX file
	}
	mapping, err := decode.NewMapping(dec.Header(), in.opts.ColumnMapping, res)
	if err != nil {
		return nil, fileProblem(err, src, in.opts.Format)
	}
	prepare := decode.Prepare
	if in.opts.Action == "delete" {
		prepare = decode.PrepareDelete
	}
	pv := &Prevalidation{Errors: []RowError{}}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return pv, nil
		}
		if err != nil {
			return nil, fileProblem(err, src, in.opts.Format)
		}
		row, problems := prepare(res, mapping, rec)
		pv.Total++
		if len(problems) == 0 {
			pv.Valid++
			continue
		}
		pv.Failed++
		if len(pv.Errors) == MaxSyncErrors {
			pv.Truncated = true
			continue
		}
		e := RowError{Row: row.Num, Code: problems[0].Code, Field: problems[0].Field, Message: problems[0].Message}
		for _, p := range problems[1:] {
			e.Message += "; " + p.Message
		}
		pv.Errors = append(pv.Errors, e)
	}
}

// fileProblem turns a decoding failure into the client's error, unless the
// blob store failed underneath.
func fileProblem(err error, src *readErr, format string) error {
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
		return &apiError{status: http.StatusUnprocessableEntity, code: "invalid_file", message: fe.Error(), details: d}
	}
	// Not a problem of this file: the decoder cannot prevalidate the format
	// inside a request.
	return &apiError{status: http.StatusUnprocessableEntity, code: "sync_not_supported",
		message: fmt.Sprintf("upload_mode sync cannot prevalidate this file (%v); use upload_mode async", err),
		details: map[string]any{"field": "upload_mode", "format": format}}
}
