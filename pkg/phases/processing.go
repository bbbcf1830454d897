package phases

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/pipeline"
	"github.com/inlet-dev/inlet/pkg/rows"
	"github.com/inlet-dev/inlet/pkg/store"
)

// Processing writes a batch to the store. The store applies a batch id once,
// so a redelivered message changes nothing and reports the same counts.
type Processing struct{ Records store.RecordStore }

func (Processing) Name() string { return events.PhaseProcessing }

func (p Processing) Run(ctx context.Context, job *pipeline.Job, w *pipeline.Work) error {
	return w.Each(ctx, func(b int, in *pipeline.Input, out *pipeline.Output) error {
		batch, err := readAll(in)
		if err != nil {
			return err
		}
		ops := make([]store.Op, 0, len(batch))
		for i := range batch {
			row := &batch[i]
			switch row.Op {
			case rows.OpCreate, rows.OpUpdate:
				data, err := json.Marshal(row.Record)
				if err != nil {
					return fmt.Errorf("row %d: %w", row.Num, err)
				}
				keys, err := job.Resource.Keys(row.Record)
				if err != nil {
					return fmt.Errorf("row %d: %w", row.Num, err)
				}
				ops = append(ops, store.Op{Kind: store.OpUpsert, Record: store.Record{
					ID: row.ID, Data: data, Keys: keys, ImportID: job.ID(), ParentID: parentOf(job)}})
			case rows.OpDelete:
				ops = append(ops, store.Op{Kind: store.OpDelete, Record: store.Record{ID: row.ID}})
			}
		}
		res, err := p.Records.Apply(ctx, job.Scope(), fmt.Sprintf("%s:%06d", job.ID(), b), ops)
		if err != nil {
			return fmt.Errorf("apply batch %d: %w", b, err)
		}
		missing := map[string]bool{}
		for _, id := range res.MissingIDs {
			missing[id] = true
		}
		for i := range batch {
			row := &batch[i]
			switch row.Op {
			case rows.OpCreate:
				out.Stats.Created++
			case rows.OpUpdate:
				out.Stats.Updated++
			case rows.OpUnchanged:
				out.Stats.Unchanged++
			case rows.OpDelete:
				if missing[row.ID] {
					if err := out.Skip(row, rows.Problem{Code: "not_found", Message: fmt.Sprintf("record %s was already gone", row.ID)}); err != nil {
						return err
					}
					continue
				}
				out.Stats.Deleted++
			}
			// Only the id and outcome go on: cleanup needs to know what the file touched.
			if err := out.Emit(&rows.Row{Num: row.Num, ID: row.ID, Op: row.Op}); err != nil {
				return err
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

// Cleanup ends the import. Overwrite's removal of untouched records is the
// next step of the roadmap; for merge and delete there is nothing to remove.
type Cleanup struct{ Records store.RecordStore }

func (Cleanup) Name() string { return events.PhaseCleanup }

func (Cleanup) Run(ctx context.Context, job *pipeline.Job, w *pipeline.Work) error {
	return w.Each(ctx, func(b int, in *pipeline.Input, out *pipeline.Output) error { return nil })
}
