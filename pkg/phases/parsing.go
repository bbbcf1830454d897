package phases

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	gojson "github.com/goccy/go-json"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/pipeline"
	"github.com/inlet-dev/inlet/pkg/rows"
	"github.com/inlet-dev/inlet/pkg/store"
)

// Parsing builds the final record of each row and decides what processing
// will do with it: create, update, leave unchanged or delete. Two rows that
// resolve to the same record (through different keys) are duplicates, across
// the whole file.
type Parsing struct{ Records store.RecordStore }

func (Parsing) Name() string { return events.PhaseParsing }

func (p Parsing) Run(ctx context.Context, job *pipeline.Job, w *pipeline.Work) error {
	// First pass: who holds each record id first, and how many rows hold it.
	seen, err := countKeys(ctx, w, nil, false, func(r *rows.Row, add func(name, value string)) { add("id", r.ID) })
	if err != nil {
		return err
	}
	useFirst := job.Options.DuplicateHandling == "use_first"
	return w.Each(ctx, func(b int, in *pipeline.Input, out *pipeline.Output) error {
		batch, err := readAll(in)
		if err != nil {
			return err
		}
		var ids []string
		for i := range batch {
			if batch[i].Op != rows.OpCreate {
				ids = append(ids, batch[i].ID)
			}
		}
		stored, err := p.Records.GetData(ctx, job.Scope(), ids)
		if err != nil {
			return fmt.Errorf("read stored records: %w", err)
		}
		for i := range batch {
			row := &batch[i]
			s := seen.get("id", row.ID, row.Num)
			if s.count > 1 && !(useFirst && s.first == row.Num) {
				msg := fmt.Sprintf("resolves to the same record (%s) as %d rows of the file (ignore_all skips all of them)", row.ID, s.count)
				if useFirst {
					msg = fmt.Sprintf("resolves to the same record (%s) as row %d (use_first keeps the first)", row.ID, s.first)
				}
				if err := out.Skip(row, rows.Problem{Code: "duplicate", Message: msg}); err != nil {
					return err
				}
				continue
			}
			if err := decide(job, row, stored); err != nil {
				return err
			}
			if row.Op == "" {
				if err := out.Skip(row, rows.Problem{Code: "not_found", Message: fmt.Sprintf("record %s no longer exists", row.ID)}); err != nil {
					return err
				}
				continue
			}
			if err := out.Emit(row); err != nil {
				return err
			}
		}
		return nil
	})
}

// decide sets row.Op and row.Record against the stored record.
func decide(job *pipeline.Job, row *rows.Row, stored map[string]json.RawMessage) error {
	cur, exists := stored[row.ID]
	if job.Options.Action == "delete" {
		if exists {
			row.Op = rows.OpDelete
		} else {
			row.Op = ""
		}
		return nil
	}
	if row.Op == rows.OpCreate || !exists {
		row.Op = rows.OpCreate
		row.Record = row.Data
		return nil
	}
	old, err := decodeStored(cur)
	if err != nil {
		return fmt.Errorf("stored record %s is not a JSON object: %w", row.ID, err)
	}
	// An empty cell means "not given": the stored value is kept (spec §5).
	// The merge changes the record exactly when a given value differs from
	// the stored one as JSON.
	changed := false
	for k, v := range row.Data {
		ov, ok := old[k]
		if !ok {
			changed = true
			break
		}
		same, err := sameJSON(ov, v)
		if err != nil {
			return err
		}
		if !same {
			changed = true
			break
		}
	}
	if !changed {
		row.Op, row.Record = rows.OpUnchanged, old
		return nil
	}
	merged := make(map[string]any, len(old)+len(row.Data))
	for k, v := range old {
		merged[k] = v
	}
	for k, v := range row.Data {
		merged[k] = v
	}
	row.Op, row.Record = rows.OpUpdate, merged
	return nil
}

// decodeStored reads a stored record as rows hold data (numbers as
// json.Number). goccy/go-json rather than encoding/json: profiled, decoding
// the stored records was a third of a re-import's parsing.
func decodeStored(b []byte) (map[string]any, error) {
	var m map[string]any
	dec := gojson.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// sameJSON reports whether a and b encode to the same JSON. Values read
// from the store and from the file are mostly of the same Go types, where a
// deep comparison says it; anything else is compared as encoded.
func sameJSON(a, b any) (bool, error) {
	if reflect.DeepEqual(a, b) {
		return true, nil
	}
	ja, err := json.Marshal(a)
	if err != nil {
		return false, err
	}
	jb, err := json.Marshal(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(ja, jb), nil
}
