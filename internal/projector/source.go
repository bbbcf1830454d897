package projector

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/decode"
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/rejects"
)

// The import's original file, converted (links upload_csv and upload_json,
// spec §1): GET /v1/imports/{id}/upload.csv and /upload.json. Whatever the
// input format, the file is decoded as prevalidation decodes it and streamed
// out one record at a time: CSV gets a header and one line per record, JSON
// an array with one object per record (CSV cells as strings under their
// column headers; JSON records as the file had them).

func (a *API) mountSource(r httpapi.Router) {
	r.HandleFunc("GET /v1/imports/{id}/upload.csv", a.uploadCSV)
	r.HandleFunc("GET /v1/imports/{id}/upload.json", a.uploadJSON)
}

// sourceKey is the blob key of the import's file: the one object under
// imports/<id>/source/ (a multipart file, inputs.jsonl, or upload.<ext>).
func (a *API) sourceKey(ctx context.Context, id string) (string, error) {
	list, err := a.cfg.Blobs.List(ctx, imports.SourceKey(id, ""))
	if err != nil {
		return "", fmt.Errorf("list the file of %s: %w", id, err)
	}
	if len(list) == 0 {
		return "", blob.ErrNotFound
	}
	return list[0].Key, nil
}

// sourceReader is one pass over the file's records.
type sourceReader struct {
	rc   io.ReadCloser
	src  decode.Source
	err  *errReader
	file events.File // how prevalidation read it: sheet, delimiter
}

func (s *sourceReader) Close() {
	if c, ok := s.src.(io.Closer); ok {
		_ = c.Close()
	}
	_ = s.rc.Close()
}

// errReader remembers a read error of the blob store, so it is not taken
// for a problem of the file.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// openSource opens the file for one pass. A decoding problem at the start is
// returned as *decode.FileError (or another non-store error: a format the
// decoder does not read).
func (a *API) openSource(ctx context.Context, key string, file events.File, format events.Format) (*sourceReader, error) {
	rc, err := a.cfg.Blobs.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	er := &errReader{r: rc}
	// Read the file the way prevalidation did: its sheet and delimiter.
	opts := decode.Options{Sheet: file.Sheet}
	if d := []rune(file.Delimiter); len(d) == 1 && format == decode.FormatCSV {
		opts.Delimiter = d[0]
	}
	src, err := decode.Open(format, er, opts)
	if err != nil {
		rc.Close()
		if er.err != nil {
			return nil, fmt.Errorf("read %s: %w", key, er.err)
		}
		return nil, &fileProblem{err}
	}
	return &sourceReader{rc: rc, src: src, err: er, file: file}, nil
}

type fileProblem struct{ err error }

func (f *fileProblem) Error() string { return f.err.Error() }
func (f *fileProblem) Unwrap() error { return f.err }

// loadSource resolves the import and opens its file, answering the request
// itself when that fails.
func (a *API) loadSource(w http.ResponseWriter, r *http.Request) (string, events.Format, *sourceReader, bool) {
	imp, ok := a.loadImport(w, r)
	if !ok {
		return "", "", nil, false
	}
	key, err := a.sourceKey(r.Context(), imp.ID)
	if errors.Is(err, blob.ErrNotFound) {
		httpapi.NotFound(w, fmt.Sprintf("import %s has no file yet", imp.ID))
		return "", "", nil, false
	}
	if err != nil {
		a.internal(w, r, err)
		return "", "", nil, false
	}
	s, err := a.openSource(r.Context(), key, imp.File, imp.Format)
	if err != nil {
		a.sourceFailed(w, r, key, err)
		return "", "", nil, false
	}
	return imp.ID, imp.Format, s, true
}

func (a *API) sourceFailed(w http.ResponseWriter, r *http.Request, key string, err error) {
	var fp *fileProblem
	if errors.Is(err, blob.ErrNotFound) {
		httpapi.NotFound(w, fmt.Sprintf("the file %s is no longer stored", key))
		return
	}
	if errors.As(err, &fp) {
		httpapi.WriteError(w, http.StatusUnprocessableEntity, "invalid_file",
			"the import's file cannot be converted: "+fp.Error(), map[string]any{"key": key})
		return
	}
	a.internal(w, r, err)
}

// abort ends a response whose status is already sent: the client sees a
// broken transfer instead of a file that merely looks shorter.
func (a *API) abort(id, route string, err error) {
	a.cfg.Log.Error().Err(err).Str("import", id).Msg(route + ": stream aborted")
	panic(http.ErrAbortHandler)
}

func (a *API) uploadCSV(w http.ResponseWriter, r *http.Request) {
	id, format, s, ok := a.loadSource(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	columns := decode.ImportColumns(s.src.Header())
	if s.src.Header() == nil {
		// JSON records have no header: a first pass collects the union of
		// their keys, in order of first appearance, so the header can be
		// written before any row.
		seen := map[string]bool{}
		columns = []string{}
		err := eachRecord(s, func(rec decode.Record) error {
			keys, _, err := rejects.Fields(rec.Raw)
			if err != nil {
				return nil // not an object (an unreadable line): no columns
			}
			for _, k := range keys {
				if !seen[k] {
					seen[k] = true
					columns = append(columns, k)
				}
			}
			return nil
		})
		s.Close()
		if err == nil {
			key, _ := a.sourceKey(ctx, id)
			s, err = a.openSource(ctx, key, s.file, format)
		}
		if err != nil {
			a.sourceFailed(w, r, id, err)
			return
		}
	}
	defer s.Close()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-upload.csv"`, id))
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	cw := csv.NewWriter(bw)
	_ = cw.Write(columns)
	cells := make([]string, len(columns))
	err := eachRecord(s, func(rec decode.Record) error {
		_, vals, err := rejects.Fields(rec.Raw)
		if err != nil {
			return nil // an unreadable JSON line is no record: errors.csv reports it
		}
		for i, c := range columns {
			cells[i] = rejects.Cell(vals[c])
		}
		return cw.Write(cells)
	})
	cw.Flush()
	if err == nil {
		err = cw.Error()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		_ = bw.Flush()
		a.abort(id, "upload.csv", err)
	}
}

func (a *API) uploadJSON(w http.ResponseWriter, r *http.Request) {
	id, _, s, ok := a.loadSource(w, r)
	if !ok {
		return
	}
	defer s.Close()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-upload.json"`, id))
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	_, _ = bw.WriteString("[")
	first := true
	err := eachRecord(s, func(rec decode.Record) error {
		if len(rec.Raw) == 0 {
			return nil
		}
		if !first {
			_, _ = bw.WriteString(",\n")
		} else {
			_, _ = bw.WriteString("\n")
		}
		first = false
		_, err := bw.Write(rec.Raw)
		return err
	})
	if err == nil {
		_, _ = bw.WriteString("\n]\n")
		err = bw.Flush()
	}
	if err != nil {
		_ = bw.Flush() // leaves invalid JSON: the client sees the cut
		a.abort(id, "upload.json", err)
	}
}

// eachRecord runs fn on every record of the pass.
func eachRecord(s *sourceReader, fn func(decode.Record) error) error {
	for {
		rec, err := s.src.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if s.err.err != nil {
				return s.err.err
			}
			return &fileProblem{err}
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}
