package phases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/jsonenc"
	"github.com/inlet-dev/inlet/internal/pipeline"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/internal/store"
)

// A revert import (action revert) puts back every record its parent import
// changed, as the store kept it (store.Change). Its file is the list of
// those records' ids, written by the intake (pipeline.RevertSource); its rows
// carry nothing but an id, so only processing has work: the phases between
// pass its batches on as they are (revertPassesThrough).

// codeRevertConflict is the code of a record a revert leaves alone.
const codeRevertConflict = "revert.conflict"

// readRevert turns the revert's file (one {"id": …} per line) into rows.
func readRevert(ctx context.Context, src io.Reader, sp *pipeline.Splitter) error {
	sp.SetHeader([]string{"id"})
	dec := json.NewDecoder(src)
	for n := int64(1); ; n++ {
		var line struct {
			ID string `json:"id"`
		}
		if err := dec.Decode(&line); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("the revert's list of records, line %d: %w", n, err)
		}
		raw, _ := json.Marshal(line)
		if err := sp.Emit(ctx, &rows.Row{Num: n, ID: line.ID, Op: rows.OpRevert, Raw: raw}); err != nil {
			return err
		}
	}
}

// revertPassesThrough wraps a phase that has nothing to do in a revert.
type revertPassesThrough struct{ pipeline.Phase }

func (r revertPassesThrough) Run(ctx context.Context, job *pipeline.Job, w pipeline.Work) error {
	if job.Options.Action != events.ActionRevert {
		return r.Phase.Run(ctx, job, w)
	}
	return w.Each(ctx, func(_ int, _ pipeline.Input, out pipeline.Output) error { return out.PassThrough() })
}

// revert applies batch b of a revert: each record goes back to what it was
// before the parent import, unless another import changed it since (its
// data is not what the parent left: the op expects that state) and the
// revert is not forced. The store applies the batch once, the expectations
// checked under its locks; a record whose key another record holds now is
// left alone too.
func (p Processing) revert(ctx context.Context, job *pipeline.Job, b int, batch []rows.Raw, out pipeline.Output) error {
	parent := job.Options.ParentImportID
	ids := make([]string, len(batch))
	for i := range batch {
		ids[i] = batch[i].ID
	}
	changes, err := p.Records.Changes(ctx, job.Scope(), parent, ids)
	if err != nil {
		return err
	}
	ops := make([]store.Op, 0, len(batch))
	outcome := make(map[string]string, len(batch)) // id → what putting it back is: create | update | delete
	for _, id := range ids {
		ch, ok := changes[id]
		if !ok {
			continue // reported below
		}
		op := store.Op{Record: store.Record{ID: id, ImportID: job.ID()}}
		switch {
		case ch.Before == nil && ch.After == nil:
			continue // created and deleted by the parent: nothing to put back
		case ch.Before == nil:
			op.Kind, outcome[id] = store.OpDelete, rows.OpDelete
		default:
			data, err := canonicalJSON(ch.Before.Data)
			if err != nil {
				return fmt.Errorf("record %s as it was before %s: %w", id, parent, err)
			}
			op.Kind, outcome[id] = store.OpUpsert, rows.OpUpdate
			if ch.After == nil {
				outcome[id] = rows.OpCreate
			}
			op.Record.ParentID, op.Record.Data, op.Record.Keys = ch.Before.ParentID, data, ch.Before.Keys
			op.Record.CreatedAt = ch.Before.CreatedAt
		}
		op.Expect = &store.Expect{Exists: ch.After != nil, Fingerprint: ch.After, Anything: job.Options.Force}
		ops = append(ops, op)
	}
	conflicts := map[string]string{} // id → why
	var res store.BatchResult
	if job.Options.DryRun {
		if res, err = p.foresee(ctx, job, ops); err != nil {
			return err
		}
	} else {
		// The store leaves out, and keeps in the batch's result, what it
		// cannot put back: a record changed since, or whose key another
		// record holds now; a replay reports the same.
		res, err = p.Records.Apply(ctx, job.Scope(), imports.ProcessingBatchID(job.ID(), b), ops)
		if err != nil {
			return fmt.Errorf("apply batch %d: %w", b, err)
		}
	}
	for _, id := range res.Conflicts {
		if held, ok := res.HeldKeys[id]; ok {
			conflicts[id] = "its key " + held + " now"
		} else {
			conflicts[id] = "another import changed it since " + parent
		}
	}
	for i := range batch {
		row := &batch[i]
		why, conflict := conflicts[row.ID]
		_, known := changes[row.ID]
		switch {
		case !known:
			if err := skipRaw(out, row, func(*rows.Row) rows.Problem {
				return rows.Problem{Code: codeRevertConflict, Message: fmt.Sprintf("import %s kept no change of record %s", parent, row.ID)}
			}); err != nil {
				return err
			}
			continue
		case conflict:
			if err := skipRaw(out, row, func(*rows.Row) rows.Problem {
				return rows.Problem{Code: codeRevertConflict, Field: "id",
					Message: fmt.Sprintf("record %s was not put back: %s (force puts it back anyway)", row.ID, why)}
			}); err != nil {
				return err
			}
			continue
		}
		switch outcome[row.ID] {
		case rows.OpCreate:
			out.Stats().Created++
		case rows.OpUpdate:
			out.Stats().Updated++
		case rows.OpDelete:
			out.Stats().Deleted++
		default:
			out.Stats().Unchanged++
		}
		if err := out.Emit(&rows.Row{Num: row.Num, ID: row.ID, Op: outcome[row.ID]}); err != nil {
			return err
		}
	}
	return nil
}

// foresee is what the store would leave out of ops as conflicts, read
// without writing (a dry run): records not in the state their op expects,
// and records whose key another record holds (one the revert itself
// deletes or rewrites may free it: not foreseen, so a dry run may count a
// conflict the revert will not meet, never the other way).
func (p Processing) foresee(ctx context.Context, job *pipeline.Job, ops []store.Op) (store.BatchResult, error) {
	var res store.BatchResult
	ids := make([]string, len(ops))
	var refs []store.KeyRef
	for i, op := range ops {
		ids[i] = op.Record.ID
		for name, value := range op.Record.Keys {
			if value != "" {
				refs = append(refs, store.KeyRef{Name: name, Value: value})
			}
		}
	}
	fps, err := p.Records.Fingerprints(ctx, job.Scope(), ids)
	if err != nil {
		return res, err
	}
	holders, err := p.Records.LookupKeys(ctx, job.Scope(), refs)
	if err != nil {
		return res, err
	}
	for _, op := range ops {
		id := op.Record.ID
		if fp, exists := fps[id]; op.Expect != nil && !op.Expect.Met(exists, fp) {
			res.Conflicts = append(res.Conflicts, id)
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(op.Record.Keys)) {
			value := op.Record.Keys[name]
			if h, held := holders[name+"\x00"+value]; value != "" && held && h.ID != id {
				if res.HeldKeys == nil {
					res.HeldKeys = map[string]string{}
				}
				res.Conflicts = append(res.Conflicts, id)
				res.HeldKeys[id] = store.HeldKey(name, value, h.ID)
				break
			}
		}
	}
	return res, nil
}

// canonicalJSON writes data as an import writes a record (jsonenc), so a
// record put back has the fingerprint its bytes had, whatever form the
// store kept them in (PostgreSQL's jsonb reorders keys).
func canonicalJSON(data json.RawMessage) (json.RawMessage, error) {
	m, err := decodeStored(data)
	if err != nil {
		return nil, err
	}
	return jsonenc.Append(nil, m)
}
