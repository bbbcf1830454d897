package projector

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/rejects"
	"github.com/inlet-dev/inlet/internal/rows"
)

// errorsCSV streams the rejected rows as CSV: the file's own columns with
// the original cells, then _row,_phase,_code,_field,_message. A row with
// several problems is one line whose underscore cells list them joined by rows.ProblemSeparator.
// The rows imported with warnings are listed too, under their warning.* codes.
func (a *API) errorsCSV(w http.ResponseWriter, r *http.Request) {
	imp, ok := a.loadImport(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	set, err := rejects.Open(ctx, a.cfg.Blobs, imp.ID)
	var columns []string
	if err == nil {
		columns, err = set.Columns(ctx)
	}
	if err != nil {
		a.internal(w, r, err)
		return
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
	err = set.Each(ctx, func(same []rows.Reject) error {
		rejects.Cells(line, columns, same[0].Data)
		n := len(columns)
		line[n] = strconv.FormatInt(same[0].Row, 10)
		line[n+1] = joinField(same, func(rj rows.Reject) string { return rj.Phase })
		line[n+2] = joinField(same, func(rj rows.Reject) string { return rj.Code })
		line[n+3] = joinField(same, func(rj rows.Reject) string { return rj.Field })
		line[n+4] = joinField(same, func(rj rows.Reject) string { return rj.Message })
		if err := cw.Write(line); err != nil {
			return err
		}
		return cw.Error()
	})
	if err != nil {
		// The status is sent: a cut-off body is all a client can be told.
		a.cfg.Log.Error().Err(err).Str("import", imp.ID).Msg("errors.csv: stream aborted")
		return
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
	set, err := rejects.Open(ctx, a.cfg.Blobs, imp.ID)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	_, _ = bw.WriteString("[")
	first := true
	err = set.Each(ctx, func(list []rows.Reject) error {
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
		return nil
	})
	if err != nil {
		a.cfg.Log.Error().Err(err).Str("import", imp.ID).Msg("errors.json: stream aborted")
		_ = bw.Flush() // leaves invalid JSON: the client sees the cut
		return
	}
	_, _ = bw.WriteString("]\n")
	_ = bw.Flush()
}
