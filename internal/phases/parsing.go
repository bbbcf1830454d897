package phases

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	gojson "github.com/goccy/go-json"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/pipeline"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/internal/store"
)

// Parsing builds the final record of each row and decides what processing
// will do with it: create, update, leave unchanged or delete. Two rows that
// resolve to the same record (through different keys) are duplicates, across
// the whole file.
type Parsing struct{ Records store.RecordStore }

func (Parsing) Name() string { return events.PhaseParsing }

func (p Parsing) Run(ctx context.Context, job *pipeline.Job, w pipeline.Work) error {
	// First pass: who holds each record id first, and how many rows hold it.
	seen, err := countKeys(ctx, w, nil, false, recordID)
	if err != nil {
		return err
	}
	useFirst := job.Options.DuplicateHandling == events.DuplicatesUseFirst
	return w.Each(ctx, func(b int, in pipeline.Input, out pipeline.Output) error {
		batch, err := in.ReadAllRaw()
		if err != nil {
			return err
		}
		if passesAsItIs(job, batch, seen) {
			return out.PassThrough()
		}
		// Transforming marked new rows (create) and the rows whose data has
		// their record's fingerprint (unchanged); the others are asked for.
		var ids []string
		for i := range batch {
			if op := batch[i].Op; op != rows.OpCreate && op != rows.OpUnchanged {
				ids = append(ids, batch[i].ID)
			}
		}
		known, err := p.Records.Fingerprints(ctx, job.Scope(), ids)
		if err != nil {
			return fmt.Errorf("read stored fingerprints: %w", err)
		}
		// A row whose data, written as processing writes it, has the stored
		// record's fingerprint is that record: unchanged, nothing read. Only
		// the other rows of records that exist need their stored record.
		same := make([]bool, len(batch))
		var need []string
		var buf []byte
		for i := range batch {
			raw := &batch[i]
			if raw.Op == rows.OpUnchanged {
				same[i] = true
				continue
			}
			fp, exists := known[raw.ID]
			if raw.Op == rows.OpCreate || !exists || job.Options.Action == events.ActionDelete {
				continue
			}
			if fp != nil {
				if buf, err = raw.AppendDataJSON(buf[:0]); err == nil && bytes.Equal(store.Fingerprint(buf), fp) {
					same[i] = true
					continue
				}
			}
			need = append(need, raw.ID)
		}
		stored, err := p.Records.GetData(ctx, job.Scope(), need)
		if err != nil {
			return fmt.Errorf("read stored records: %w", err)
		}
		for i := range batch {
			raw := &batch[i]
			s := seen.get(recordIDKey, raw.ID, raw.Num)
			if s.count > 1 && !(useFirst && s.first == raw.Num) {
				msg := fmt.Sprintf("resolves to the same record (%s) as %d rows of the file (ignore_all skips all of them)", raw.ID, s.count)
				if useFirst {
					msg = fmt.Sprintf("resolves to the same record (%s) as row %d (use_first keeps the first)", raw.ID, s.first)
				}
				if err := skipRaw(out, raw, func(*rows.Row) rows.Problem { return rows.Problem{Code: "duplicate", Message: msg} }); err != nil {
					return err
				}
				continue
			}
			_, exists := known[raw.ID]
			if err := decide(job, raw, exists || same[i], same[i], stored, out); err != nil {
				return err
			}
		}
		return nil
	})
}

// passesAsItIs reports whether parsing would write batch as it came: every
// row is one of a kind in the file, and transforming found it new or its
// record unchanged and wrote its data as its record. A fresh import and an
// import of unchanged rows are all such batches, and were encoded and
// stored again for nothing.
func passesAsItIs(job *pipeline.Job, batch []rows.Raw, seen *keyIndex) bool {
	if job.Options.Action == events.ActionDelete {
		return false
	}
	for i := range batch {
		raw := &batch[i]
		if raw.Op != rows.OpCreate && raw.Op != rows.OpUnchanged || !raw.RecordIsData() {
			return false
		}
		if seen.get(recordIDKey, raw.ID, raw.Num).count > 1 {
			return false
		}
	}
	return true
}

// decide passes raw on with what processing is to do with it against the
// stored record: a create or a delete as it is (a create's record is its
// data), an unchanged row known by its fingerprint with its data as the
// record, the others merged with the stored record.
func decide(job *pipeline.Job, raw *rows.Raw, exists, same bool, stored map[string]json.RawMessage, out pipeline.Output) error {
	if job.Options.Action == events.ActionDelete {
		if !exists {
			return skipRaw(out, raw, func(*rows.Row) rows.Problem {
				return rows.Problem{Code: "not_found", Message: fmt.Sprintf("record %s no longer exists", raw.ID)}
			})
		}
		return out.EmitRaw(raw, raw.ID, rows.OpDelete, rows.RecordKept)
	}
	if same {
		return out.EmitRaw(raw, raw.ID, rows.OpUnchanged, rows.RecordIsData)
	}
	cur, exists := stored[raw.ID]
	if raw.Op == rows.OpCreate || !exists {
		return out.EmitRaw(raw, raw.ID, rows.OpCreate, rows.RecordIsData)
	}
	row, err := raw.Row()
	if err != nil {
		return err
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
		return out.Emit(&row)
	}
	merged := make(map[string]any, len(old)+len(row.Data))
	for k, v := range old {
		merged[k] = v
	}
	for k, v := range row.Data {
		merged[k] = v
	}
	row.Op, row.Record = rows.OpUpdate, merged
	return out.Emit(&row)
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
