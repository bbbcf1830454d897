package rejects_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/rejects"
	"github.com/inlet-dev/inlet/internal/rows"
)

func put(t *testing.T, blobs blob.Store, key string, list ...rows.Reject) {
	t.Helper()
	var b bytes.Buffer
	enc := rows.NewEncoder(&b)
	for _, rj := range list {
		if err := enc.Encode(rj); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := blobs.Put(context.Background(), key, &b, int64(b.Len())); err != nil {
		t.Fatal(err)
	}
}

// rejectsOf stores one import's rejects: two batches, several phases, rows
// out of order within a batch, one row with two problems, a skipped
// duplicate and a row imported with a warning.
func rejectsOf(t *testing.T, blobs blob.Store, id string, data func(code, name string) string) {
	t.Helper()
	rj := func(row int64, phase, code string, skipped, warning bool, c, n string) rows.Reject {
		return rows.Reject{Row: row, Phase: phase, Code: code, Skipped: skipped, Warning: warning, Data: json.RawMessage(data(c, n))}
	}
	put(t, blobs, imports.RejectsKey(id, events.PhasePrevalidation, 1),
		rj(14, events.PhasePrevalidation, "schema.type", false, false, "N", "x"),
		rj(12, events.PhasePrevalidation, "warning.x", false, true, "W", "warned"))
	put(t, blobs, imports.RejectsKey(id, events.PhaseValidation, 1),
		rj(14, events.PhaseValidation, "reference.not_found", false, false, "N", "x"))
	put(t, blobs, imports.RejectsKey(id, events.PhasePreparsing, 0),
		rj(3, events.PhasePreparsing, "duplicate", true, false, "D", "dup"))
	put(t, blobs, imports.RejectsKey(id, events.PhaseValidation, 0),
		rj(5, events.PhaseValidation, "reference.not_found", false, false, "R", "needs, a \"ref\""),
		rj(2, events.PhaseValidation, "reference.not_found", false, false, "Q", ""))
	// Rows the reader could not make rows of: an unclosed quote (nothing
	// kept), a line of more cells than the header (the first ones kept).
	put(t, blobs, imports.RejectsKey(id, events.PhasePrevalidation, 2),
		rows.Reject{Row: 21, Phase: events.PhasePrevalidation, Code: "parse.csv", Message: "bare quote"},
		rj(22, events.PhasePrevalidation, "parse.csv", false, false, "X", "Smith"))
}

func TestWriteFailedGivesTheFailedRowsBackAsTheyWere(t *testing.T) {
	ctx := context.Background()
	blobs, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	csvData := func(c, n string) string {
		b, _ := json.Marshal(map[string]string{"Code": c, "Name": n})
		return string(b)
	}
	rejectsOf(t, blobs, "imp_csv", csvData)
	b, _ := json.Marshal([]string{"Code", "Name"})
	if err := blobs.Put(ctx, imports.HeaderKey("imp_csv"), bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	set, err := rejects.Open(ctx, blobs, "imp_csv")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	format, n, unreadable, err := set.WriteFailed(ctx, &out)
	want := "Code,Name\nQ,\nR,\"needs, a \"\"ref\"\"\"\nN,x\n"
	if err != nil || format != events.FormatCSV || n != 3 || unreadable != 2 || out.String() != want {
		t.Errorf("CSV: %s %d (%d unreadable) %v\n%q\nwant %q, 3 rows, 2 unreadable left out", format, n, unreadable, err, out.String(), want)
	}
	var seen []int64
	if err := set.Each(ctx, func(row []rows.Reject) error {
		seen = append(seen, row[0].Row)
		if row[0].Row == 14 && (len(row) != 2 || row[0].Phase != events.PhasePrevalidation || row[1].Phase != events.PhaseValidation) {
			t.Errorf("row 14's problems: %+v, want both, in phase order", row)
		}
		return nil
	}); err != nil || len(seen) != 7 || seen[0] != 2 || seen[1] != 3 || seen[2] != 5 || seen[3] != 12 || seen[4] != 14 || seen[6] != 22 {
		t.Errorf("Each: rows %v %v, want 2 3 5 12 14 21 22", seen, err)
	}

	// JSON input has no header: the rows' objects, one a line.
	rejectsOf(t, blobs, "imp_json", func(c, n string) string { return `{"code": "` + c + `", "n": 1}` })
	set, err = rejects.Open(ctx, blobs, "imp_json")
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	format, n, unreadable, err = set.WriteFailed(ctx, &out)
	want = "{\"code\":\"Q\",\"n\":1}\n{\"code\":\"R\",\"n\":1}\n{\"code\":\"N\",\"n\":1}\n"
	if err != nil || format != events.FormatJSONL || n != 3 || unreadable != 2 || out.String() != want {
		t.Errorf("JSONL: %s %d %v\n%q\nwant %q", format, n, err, out.String(), want)
	}
	if cols, err := set.Columns(ctx); err != nil || len(cols) != 2 || cols[0] != "code" || cols[1] != "n" {
		t.Errorf("columns of JSON rows: %v %v", cols, err)
	}
}
