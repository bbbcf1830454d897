package phases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/pipeline"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/internal/store"
)

// Processing writes a batch to the store. The store applies a batch id once,
// so a redelivered message changes nothing and reports the same counts.
type Processing struct{ Records store.RecordStore }

func (Processing) Name() string { return events.PhaseProcessing }

func (p Processing) Run(ctx context.Context, job *pipeline.Job, w pipeline.Work) error {
	keyFields := fieldSet(job.Resource.KeyFields())
	overwrite := job.Options.Action == events.ActionOverwrite // cleanup counts the ids of the file
	return w.Each(ctx, func(b int, in pipeline.Input, out pipeline.Output) error {
		// Rows as stored: a record goes to the store as JSON transcoded from
		// its bytes, its keys read from its key fields; unchanged rows are
		// only counted.
		batch, err := in.ReadAllRaw()
		if err != nil {
			return err
		}
		if job.Options.Action == events.ActionRevert {
			return p.revert(ctx, job, b, batch, out)
		}
		ops := make([]store.Op, 0, len(batch))
		var arena []byte // every record's JSON, one after the other
		for i := range batch {
			row := &batch[i]
			switch row.Op {
			case rows.OpCreate, rows.OpUpdate:
				start := len(arena)
				arena, err = row.AppendRecordJSON(arena)
				if err != nil {
					return fmt.Errorf("row %d: %w", row.Num, err)
				}
				data := json.RawMessage(arena[start:len(arena):len(arena)])
				keys, err := job.Resource.Keys(row.RecordFields(keyFields))
				if err != nil {
					return fmt.Errorf("row %d: %w", row.Num, err)
				}
				kind := store.OpUpsert
				if row.Op == rows.OpCreate {
					kind = store.OpCreate // transforming found none of its keys: the store may take its fast path
				}
				ops = append(ops, store.Op{Kind: kind, Record: store.Record{
					ID: row.ID, Data: data, Keys: keys, ImportID: job.ID(), ParentID: parentOf(job)}})
			case rows.OpDelete:
				ops = append(ops, store.Op{Kind: store.OpDelete, Record: store.Record{ID: row.ID, ImportID: job.ID()}})
			}
		}
		var res store.BatchResult
		if !job.Options.DryRun {
			res, err = p.Records.Apply(ctx, job.Scope(), imports.ProcessingBatchID(job.ID(), b), ops)
			if err != nil {
				return fmt.Errorf("apply batch %d: %w", b, err)
			}
		}
		missing := map[string]bool{}
		for _, id := range res.MissingIDs {
			missing[id] = true
		}
		for i := range batch {
			row := &batch[i]
			switch row.Op {
			case rows.OpCreate:
				out.Stats().Created++
			case rows.OpUpdate:
				out.Stats().Updated++
			case rows.OpUnchanged:
				out.Stats().Unchanged++
			case rows.OpDelete:
				if missing[row.ID] {
					if err := skipRaw(out, row, func(*rows.Row) rows.Problem {
						return rows.Problem{Code: "not_found", Message: fmt.Sprintf("record %s was already gone", row.ID)}
					}); err != nil {
						return err
					}
					continue
				}
				out.Stats().Deleted++
			}
			if row.HasWarnings() {
				whole, err := row.Row()
				if err != nil {
					return err
				}
				if err := out.Warn(&whole); err != nil {
					return err
				}
			}
			// Only the id and outcome go on: cleanup needs to know what the file touched.
			if err := out.Emit(&rows.Row{Num: row.Num, ID: row.ID, Op: row.Op}); err != nil {
				return err
			}
			if overwrite {
				out.SummarizeKey(recordIDKey, row.ID, row.Num)
			}
		}
		return nil
	})
}

func parentOf(job *pipeline.Job) string {
	if job.Options.ParentResourceID != nil {
		return *job.Options.ParentResourceID
	}
	return ""
}

// Cleanup ends the import. For overwrite it removes every record of the
// scope (and parent) that the file did not contain — unless the import was
// interrupted, when the file was not wholly applied. A dry run counts what it
// would remove.
type Cleanup struct {
	Records store.RecordStore
	Blobs   blob.Store
}

func (Cleanup) Name() string { return events.PhaseCleanup }

// cleanupChunk bounds one delete transaction.
const cleanupChunk = 1000

func (c Cleanup) Run(ctx context.Context, job *pipeline.Job, w pipeline.Work) error {
	overwrite := job.Options.Action == events.ActionOverwrite
	if overwrite {
		if stopped, err := w.Interrupted(ctx); err != nil {
			return err
		} else if stopped {
			overwrite = false
		}
	}
	// Every record a row of the file resolved to stays, whatever its outcome.
	var keep *keyIndex
	if overwrite {
		var err error
		keep, err = countKeys(ctx, w, nil, true, recordID)
		if err != nil {
			return err
		}
		defer keep.close()
	}
	return w.Each(ctx, func(b int, in pipeline.Input, out pipeline.Output) error {
		if !overwrite || b != 0 {
			return nil
		}
		n, err := c.overwrite(ctx, job, keep, c.Blobs)
		out.Stats().Overwritten = n
		return err
	})
}

// overwrite removes the scope's records not in keep. The ids to remove are
// listed once into the blob store; chunks of that list are applied with batch
// ids by position, so a re-run after a crash replays the chunks already done
// (same result, nothing deleted twice) and the count stays exact.
func (c Cleanup) overwrite(ctx context.Context, job *pipeline.Job, keep *keyIndex, blobs blob.Store) (int64, error) {
	key := imports.PhasePrefix(job.ID(), events.PhaseCleanup) + "remove.ndjson"
	if _, err := blobs.Stat(ctx, key); errors.Is(err, blob.ErrNotFound) {
		n, err := c.listRemovals(ctx, job, keep, blobs, key)
		if err != nil || job.Options.DryRun {
			return n, err
		}
	} else if err != nil {
		return 0, err
	}
	rc, err := blobs.Get(ctx, key)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	dec := rows.NewDecoder(rc)
	var removed int64
	for chunk := 0; ; chunk++ {
		var ops []store.Op
		for len(ops) < cleanupChunk {
			var id string
			if err := dec.Decode(&id); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return removed, err
			}
			ops = append(ops, store.Op{Kind: store.OpDelete, Record: store.Record{ID: id, ImportID: job.ID()}})
		}
		if len(ops) == 0 {
			return removed, nil
		}
		res, err := c.Records.Apply(ctx, job.Scope(), fmt.Sprintf("%s:cleanup:%06d", job.ID(), chunk), ops)
		if err != nil {
			return removed, fmt.Errorf("overwrite: %w", err)
		}
		removed += res.Deleted
	}
}

// listRemovals writes the ids of the scope's records not in keep to key (one
// JSON string per line) and returns how many; a dry run only counts.
func (c Cleanup) listRemovals(ctx context.Context, job *pipeline.Job, keep *keyIndex, blobs blob.Store, key string) (int64, error) {
	f, err := os.CreateTemp("", "inlet-remove-*.ndjson")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	enc := rows.NewEncoder(f)
	var n int64
	after := ""
	for {
		ids, err := c.Records.ListIDs(ctx, job.Scope(), parentOf(job), after, cleanupChunk)
		if err != nil {
			return 0, fmt.Errorf("list records to overwrite: %w", err)
		}
		if len(ids) == 0 {
			break
		}
		after = ids[len(ids)-1]
		for _, id := range ids {
			kept, err := keep.contains(recordIDKey, id)
			if err != nil {
				return 0, err
			}
			if kept {
				continue
			}
			n++
			if err := enc.Encode(id); err != nil {
				return 0, err
			}
		}
	}
	if job.Options.DryRun {
		return n, nil
	}
	if err := enc.Flush(); err != nil {
		return 0, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return n, blobs.Put(ctx, key, f, size)
}
