package phases

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/pipeline"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/internal/store"
)

// Transforming injects record ids: each row's keys are looked up in the
// store; a row whose keys point at different records is ambiguous.
type Transforming struct{ Records store.RecordStore }

func (Transforming) Name() string { return events.PhaseTransforming }

func (t Transforming) Run(ctx context.Context, job *pipeline.Job, w pipeline.Work) error {
	res := job.Resource
	keyFields := fieldSet(res.KeyFields())
	newID := imports.RecordIDs(job.ID())
	return w.Each(ctx, func(b int, in pipeline.Input, out pipeline.Output) error {
		// Rows as stored: only their key fields are read, the rest is copied on.
		batch, err := in.ReadAllRaw()
		if err != nil {
			return err
		}
		keys := make([]map[string]string, len(batch))
		var refs []store.KeyRef
		for i := range batch {
			keys[i] = res.KeyValues(batch[i].Fields(keyFields))
			for name, v := range keys[i] {
				refs = append(refs, store.KeyRef{Name: name, Value: v})
			}
		}
		found, err := t.Records.LookupKeys(ctx, job.Scope(), refs)
		if err != nil {
			return fmt.Errorf("look up keys: %w", err)
		}
		var buf []byte
		for i := range batch {
			raw := &batch[i]
			ids := map[string][]string{} // id → key names that point at it
			var fp []byte
			for _, name := range sortedKeys(keys[i]) {
				if h, ok := found[name+"\x00"+keys[i][name]]; ok {
					ids[h.ID] = append(ids[h.ID], name)
					fp = h.Fingerprint
				}
			}
			switch {
			case len(ids) > 1:
				var parts []string
				for id, names := range ids {
					parts = append(parts, fmt.Sprintf("%s matches %s", strings.Join(names, " and "), id))
				}
				sort.Strings(parts)
				err = rejectRaw(out, raw, rows.Problem{Code: "ambiguous", Field: firstField(ids),
					Message: "keys match different records: " + strings.Join(parts, ", ")})
			case len(ids) == 1:
				op := raw.Op
				// The row is its record as stored when its data, written as
				// processing writes it, has the record's fingerprint: parsing
				// then asks the store nothing more about it.
				if fp != nil && job.Options.Action != events.ActionDelete {
					if buf, err = raw.AppendDataJSON(buf[:0]); err != nil {
						return err
					}
					if bytes.Equal(store.Fingerprint(buf), fp) {
						op = rows.OpUnchanged
					}
				}
				for id := range ids {
					err = emitWithID(out, raw, id, op)
				}
			case job.Options.Action == events.ActionDelete:
				err = skipRaw(out, raw, func(row *rows.Row) rows.Problem {
					return rows.Problem{Code: "not_found", Field: res.PrimaryKeyName(),
						Message: fmt.Sprintf("no %s record with %s %q to delete", res.Name, res.PrimaryKeyName(), display(row.Data, res.PrimaryKeyName()))}
				})
			default:
				if _, ok := keys[i][res.PrimaryKeyName()]; !ok {
					err = rejectRaw(out, raw, rows.Problem{Code: "schema.required", Field: res.PrimaryKeyName(),
						Message: fmt.Sprintf("a new %s record needs its key %s", res.Name, res.PrimaryKeyName())})
					break
				}
				// Preparsing left one row per key, so an id made of the import and the
				// row is one per new record, the same on a re-run, and ascending.
				err = emitWithID(out, raw, newID(raw.Num), rows.OpCreate)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// emitWithID passes raw on with its record id, which parsing counts. A new
// row's record and an unchanged row's are its data, as parsing would write
// them: a batch of such rows goes through parsing as it is.
func emitWithID(out pipeline.Output, raw *rows.Raw, id, op string) error {
	out.SummarizeKey(recordIDKey, id, raw.Num)
	rec := rows.RecordKept
	if op == rows.OpCreate || op == rows.OpUnchanged {
		rec = rows.RecordIsData
	}
	return out.EmitRaw(raw, id, op, rec)
}

func fieldSet(fields []string) map[string]bool {
	set := make(map[string]bool, len(fields))
	for _, f := range fields {
		set[f] = true
	}
	return set
}

// rejectRaw rejects a row read as stored: decoded whole, as a reject
// carries the row as the file had it.
func rejectRaw(out pipeline.Output, raw *rows.Raw, problems ...rows.Problem) error {
	row, err := raw.Row()
	if err != nil {
		return err
	}
	return out.Reject(&row, problems...)
}

// skipRaw skips a row read as stored, with the problem p makes of it whole.
func skipRaw(out pipeline.Output, raw *rows.Raw, p func(*rows.Row) rows.Problem) error {
	row, err := raw.Row()
	if err != nil {
		return err
	}
	return out.Skip(&row, p(&row))
}

func firstField(ids map[string][]string) string {
	var all []string
	for _, names := range ids {
		all = append(all, names...)
	}
	sort.Strings(all)
	if len(all) == 0 {
		return ""
	}
	return all[0]
}
