// Package rejects reads the rows an import set aside — failed, skipped, or
// imported with a warning — from the blob store (imports/<id>/<phase>/rejects/,
// and the file's header), in row order, holding one batch of them at a time.
// errors.csv, errors.json and a retry's file are all written from here.
package rejects

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/rows"
)

// Set is the rejects of one import, listed once.
type Set struct {
	blobs   blob.Store
	id      string
	batches []batch
}

// batch is the reject files of one batch number, in phase order.
type batch struct {
	n    int
	keys []string
}

// Open lists the reject files of import id grouped by batch. Batches
// partition the file by row ranges, so visiting batch after batch, each
// sorted by row, gives row order while holding one batch's rejects at a time.
func Open(ctx context.Context, blobs blob.Store, id string) (*Set, error) {
	byBatch := map[int][]string{}
	for _, phase := range events.Phases {
		infos, err := blobs.List(ctx, imports.PhasePrefix(id, phase)+"rejects/")
		if err != nil {
			return nil, fmt.Errorf("list %s rejects of %s: %w", phase, id, err)
		}
		for _, in := range infos {
			n, err := strconv.Atoi(strings.TrimSuffix(path.Base(in.Key), ".ndjson"))
			if err != nil || !strings.HasSuffix(in.Key, ".ndjson") {
				continue // not a batch file (a temp or foreign object)
			}
			byBatch[n] = append(byBatch[n], in.Key)
		}
	}
	s := &Set{blobs: blobs, id: id, batches: make([]batch, 0, len(byBatch))}
	for n, keys := range byBatch {
		s.batches = append(s.batches, batch{n: n, keys: keys})
	}
	sort.Slice(s.batches, func(i, j int) bool { return s.batches[i].n < s.batches[j].n })
	return s, nil
}

// Each calls fn with every row set aside, in row order: the row's problems
// (several when phases found several), in phase order. It stops at fn's
// first error.
func (s *Set) Each(ctx context.Context, fn func(row []rows.Reject) error) error {
	for _, b := range s.batches {
		list, err := s.readBatch(ctx, b)
		if err != nil {
			return err
		}
		for i := 0; i < len(list); {
			j := i + 1
			for j < len(list) && list[j].Row == list[i].Row {
				j++
			}
			if err := fn(list[i:j]); err != nil {
				return err
			}
			i = j
		}
	}
	return nil
}

// readBatch returns the rejects of one batch sorted by row (phase order kept
// for a row with several problems).
func (s *Set) readBatch(ctx context.Context, b batch) ([]rows.Reject, error) {
	var out []rows.Reject
	for _, key := range b.keys {
		if err := s.read(ctx, key, func(rj rows.Reject) { out = append(out, rj) }); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Row < out[j].Row })
	return out, nil
}

func (s *Set) read(ctx context.Context, key string, fn func(rows.Reject)) error {
	rc, err := s.blobs.Get(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return nil // removed since listed (expiry): nothing to report
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	dec := rows.NewDecoder(rc)
	for {
		var rj rows.Reject
		err := dec.Decode(&rj)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		fn(rj)
	}
}

// Header is the file's header as prevalidation saved it (its import
// columns), or nil for JSON input, which has none.
func (s *Set) Header(ctx context.Context) ([]string, error) { return Header(ctx, s.blobs, s.id) }

// Header is the header of import id's file (see Set.Header).
func Header(ctx context.Context, blobs blob.Store, id string) ([]string, error) {
	var h []string
	ok, err := blob.GetJSON(ctx, blobs, imports.HeaderKey(id), &h)
	if err != nil {
		return nil, fmt.Errorf("header of %s: %w", id, err)
	}
	if !ok {
		return nil, nil
	}
	if h == nil {
		h = []string{}
	}
	return h, nil
}

// Columns are the columns to give the rows back under: the file's header,
// or for JSON input the union of the rows' keys in order of appearance (a
// first pass over the rejects, so the header can be written before any row).
func (s *Set) Columns(ctx context.Context) ([]string, error) {
	columns, err := s.Header(ctx)
	if err != nil || columns != nil {
		return columns, err
	}
	seen := map[string]bool{}
	columns = []string{}
	for _, b := range s.batches {
		for _, key := range b.keys {
			err := s.read(ctx, key, func(rj rows.Reject) {
				keys, _, err := Fields(rj.Data)
				if err != nil {
					return
				}
				for _, k := range keys {
					if !seen[k] {
						seen[k] = true
						columns = append(columns, k)
					}
				}
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return columns, nil
}

// Failed reports whether a row's problems failed it: a row only skipped
// (a duplicate, a delete's missing record) or imported with a warning did
// not fail.
func Failed(row []rows.Reject) bool {
	for _, rj := range row {
		if !rj.Skipped && !rj.Warning {
			return true
		}
	}
	return false
}

// Fields returns the keys of a JSON object in document order, and its values.
func Fields(raw json.RawMessage) ([]string, map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, fmt.Errorf("row data is not a JSON object")
	}
	var keys []string
	vals := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		if _, dup := vals[k]; !dup {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	return keys, vals, nil
}

// Cell is a value as a CSV cell: strings verbatim, null as an empty cell
// (empty means "not given" on import), anything else as its JSON text.
func Cell(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) == nil {
		return buf.String()
	}
	return string(v)
}

// Cells fills line with the row's cells under columns.
func Cells(line []string, columns []string, data json.RawMessage) {
	_, vals, _ := Fields(data)
	for c, col := range columns {
		line[c] = Cell(vals[col])
	}
}

// FailedFormat is the format WriteFailed writes for a file with header
// (nil: none): CSV under the header, else JSONL.
func FailedFormat(header []string) events.Format {
	if header == nil {
		return events.FormatJSONL
	}
	return events.FormatCSV
}

// Unreadable reports whether a failed row cannot be given back as it was:
// the file's reader could not make it a row (an unclosed quote, a line of
// more or fewer cells than the header, bad JSON), so what it kept of it is
// nothing or not the whole line.
func Unreadable(row []rows.Reject) bool {
	for _, rj := range row {
		if !rj.Skipped && !rj.Warning && (len(rj.Data) == 0 || strings.HasPrefix(rj.Code, "parse.")) {
			return true
		}
	}
	return false
}

// WriteFailed writes the failed rows of the set to w as a file to import
// again, as they were: CSV under the file's header when the file had one
// (CSV, XLSX), else JSONL of the rows' objects. Unreadable rows are left
// out (written as kept they would vanish or import shifted): only a
// corrected file brings them back. It returns the format written, the
// number of rows and of those left out. The same rejects give the same
// bytes, so a redelivery writes the same file.
func (s *Set) WriteFailed(ctx context.Context, w io.Writer) (events.Format, int64, int64, error) {
	header, err := s.Header(ctx)
	if err != nil {
		return "", 0, 0, err
	}
	var n, unreadable int64
	take := func(row []rows.Reject) bool {
		switch {
		case !Failed(row):
			return false
		case Unreadable(row):
			unreadable++
			return false
		}
		n++
		return true
	}
	if FailedFormat(header) == events.FormatJSONL {
		enc := rows.NewEncoder(w)
		err := s.Each(ctx, func(row []rows.Reject) error {
			if !take(row) {
				return nil
			}
			return enc.Encode(row[0].Data)
		})
		if err == nil {
			err = enc.Flush()
		}
		return events.FormatJSONL, n, unreadable, err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return "", 0, 0, err
	}
	line := make([]string, len(header))
	err = s.Each(ctx, func(row []rows.Reject) error {
		if !take(row) {
			return nil
		}
		Cells(line, header, row[0].Data)
		return cw.Write(line)
	})
	cw.Flush()
	if err == nil {
		err = cw.Error()
	}
	return events.FormatCSV, n, unreadable, err
}
