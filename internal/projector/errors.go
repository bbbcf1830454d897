package projector

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/rows"
)

// rejectBatch is the reject files of one batch number, in phase order.
type rejectBatch struct {
	batch int
	keys  []string
}

// rejectBatches lists the reject files of an import grouped by batch. Batches
// partition the file by row ranges, so emitting batch after batch, each
// sorted by row, gives row order while holding one batch's rejects at a time.
func (a *API) rejectBatches(ctx context.Context, id string) ([]rejectBatch, error) {
	byBatch := map[int][]string{}
	for _, phase := range events.Phases {
		infos, err := a.cfg.Blobs.List(ctx, imports.PhasePrefix(id, phase)+"rejects/")
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
	out := make([]rejectBatch, 0, len(byBatch))
	for b, keys := range byBatch {
		out = append(out, rejectBatch{batch: b, keys: keys})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].batch < out[j].batch })
	return out, nil
}

// readBatch returns the rejected rows of one batch sorted by row (phase order
// kept for a row with several problems), and the rows imported with warnings,
// which are listed under their own warning.* codes.
func (a *API) readBatch(ctx context.Context, rb rejectBatch) ([]rows.Reject, error) {
	var out []rows.Reject
	for _, key := range rb.keys {
		if err := a.readRejects(ctx, key, func(rj rows.Reject) {
			out = append(out, rj)
		}); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Row < out[j].Row })
	return out, nil
}

func (a *API) readRejects(ctx context.Context, key string, fn func(rows.Reject)) error {
	rc, err := a.cfg.Blobs.Get(ctx, key)
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

// header is the CSV header prevalidation saved, or nil for JSON input.
func (a *API) header(ctx context.Context, id string) ([]string, error) {
	rc, err := a.cfg.Blobs.Get(ctx, imports.HeaderKey(id))
	if errors.Is(err, blob.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read header of %s: %w", id, err)
	}
	defer rc.Close()
	var h []string
	if err := json.NewDecoder(rc).Decode(&h); err != nil {
		return nil, fmt.Errorf("header of %s is not a JSON array of strings: %w", id, err)
	}
	return h, nil
}

// orderedKeys returns the keys of a JSON object in document order.
func orderedKeys(raw json.RawMessage) ([]string, map[string]json.RawMessage, error) {
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

// cellText is a value as a CSV cell: strings verbatim, null as an empty cell
// (empty means "not given" on import), anything else as its JSON text.
func cellText(v json.RawMessage) string {
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

// errorsCSV streams the rejected rows as CSV: the file's own columns with
// the original cells, then _row,_phase,_code,_field,_message. A row with
// several problems is one line whose underscore cells list them joined by rows.ProblemSeparator.
func (a *API) errorsCSV(w http.ResponseWriter, r *http.Request) {
	imp, ok := a.loadImport(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	batches, err := a.rejectBatches(ctx, imp.ID)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	columns, err := a.header(ctx, imp.ID)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if columns == nil {
		// JSON input has no header: a first pass collects the union of the
		// rows' keys, so the header can be written before any row.
		seen := map[string]bool{}
		columns = []string{}
		for _, rb := range batches {
			for _, key := range rb.keys {
				err := a.readRejects(ctx, key, func(rj rows.Reject) {
					keys, _, err := orderedKeys(rj.Data)
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
					a.internal(w, r, err)
					return
				}
			}
		}
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-errors.csv"`, imp.ID))
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	cw := csv.NewWriter(bw)
	line := make([]string, len(columns)+5)
	copy(line, columns)
	copy(line[len(columns):], []string{"_row", "_phase", "_code", "_field", "_message"})
	if err := cw.Write(line); err != nil {
		return
	}
	for _, rb := range batches {
		list, err := a.readBatch(ctx, rb)
		if err != nil {
			// The status is sent: a cut-off body is all a client can be told.
			a.cfg.Log.Error().Err(err).Str("import", imp.ID).Msg("errors.csv: stream aborted")
			return
		}
		for i := 0; i < len(list); {
			j := i + 1
			for j < len(list) && list[j].Row == list[i].Row {
				j++
			}
			same := list[i:j]
			_, vals, _ := orderedKeys(same[0].Data)
			for c, col := range columns {
				line[c] = cellText(vals[col])
			}
			n := len(columns)
			line[n] = strconv.FormatInt(same[0].Row, 10)
			line[n+1] = joinField(same, func(rj rows.Reject) string { return rj.Phase })
			line[n+2] = joinField(same, func(rj rows.Reject) string { return rj.Code })
			line[n+3] = joinField(same, func(rj rows.Reject) string { return rj.Field })
			line[n+4] = joinField(same, func(rj rows.Reject) string { return rj.Message })
			if err := cw.Write(line); err != nil {
				return
			}
			i = j
		}
		cw.Flush()
		if cw.Error() != nil {
			return
		}
	}
	cw.Flush()
	_ = bw.Flush()
}

// joinField joins one attribute of a row's problems: equal values (the
// usual single problem, or one phase) collapse to one.
func joinField(list []rows.Reject, get func(rows.Reject) string) string {
	parts := make([]string, len(list))
	same := true
	for i, rj := range list {
		parts[i] = get(rj)
		same = same && parts[i] == parts[0]
	}
	if same {
		return parts[0]
	}
	return strings.Join(parts, rows.ProblemSeparator)
}

// rejectJSON is one element of errors.json.
type rejectJSON = events.RowError

// errorsJSON streams the rejected rows as a JSON array, one element per
// problem, in row order.
func (a *API) errorsJSON(w http.ResponseWriter, r *http.Request) {
	imp, ok := a.loadImport(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	batches, err := a.rejectBatches(ctx, imp.ID)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	_, _ = bw.WriteString("[")
	first := true
	for _, rb := range batches {
		list, err := a.readBatch(ctx, rb)
		if err != nil {
			a.cfg.Log.Error().Err(err).Str("import", imp.ID).Msg("errors.json: stream aborted")
			_ = bw.Flush() // leaves invalid JSON: the client sees the cut
			return
		}
		for _, rj := range list {
			b, err := json.Marshal(rejectJSON{Row: rj.Row, Phase: rj.Phase, Code: rj.Code, Field: rj.Field, Message: rj.Message, Data: rj.Data})
			if err != nil {
				b, _ = json.Marshal(rejectJSON{Row: rj.Row, Phase: rj.Phase, Code: rj.Code, Field: rj.Field, Message: rj.Message})
			}
			if !first {
				_ = bw.WriteByte(',')
			}
			first = false
			_, _ = bw.Write(b)
		}
		if err := bw.Flush(); err != nil {
			return
		}
	}
	_, _ = bw.WriteString("]\n")
	_ = bw.Flush()
}
