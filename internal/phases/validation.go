package phases

import (
	"context"
	"fmt"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/pipeline"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/internal/store"
)

// Validation checks references: a field naming a record of another resource
// must name one that exists (in the same organization and mode).
type Validation struct{ Records store.RecordStore }

func (Validation) Name() string { return events.PhaseValidation }

func (v Validation) Run(ctx context.Context, job *pipeline.Job, w pipeline.Work) error {
	refs := job.Resource.Refs()
	var fields []string
	for _, ref := range refs {
		fields = append(fields, ref.Field)
	}
	return w.Each(ctx, func(b int, in pipeline.Input, out pipeline.Output) error {
		// First the referencing fields of every row; the rows whole only if
		// one of them is rejected, else the batch goes on as it is.
		in.Only(fields...)
		batch, err := in.ReadAll()
		if err != nil {
			return err
		}
		problems, err := v.check(ctx, job, refs, batch)
		if err != nil {
			return err
		}
		if len(problems) == 0 {
			return out.PassThrough()
		}
		if err := in.Rewind(ctx); err != nil {
			return err
		}
		if batch, err = in.ReadAll(); err != nil {
			return err
		}
		for i := range batch {
			row := &batch[i]
			if p := problems[i]; len(p) > 0 {
				err = out.Reject(row, p...)
			} else {
				err = out.Emit(row)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// check returns the problems of the rows of batch that fail a reference, by
// their position in the batch (none: every row passes).
func (v Validation) check(ctx context.Context, job *pipeline.Job, refs []resources.Reference, batch []rows.Row) (map[int][]rows.Problem, error) {
	// One lookup per referenced resource for the whole batch.
	found := map[string]map[string]store.Holder{}
	if job.Options.Action != events.ActionDelete {
		for _, ref := range refs {
			// A batch names the same few records many times (its companies):
			// each value is looked up once.
			var keys []store.KeyRef
			asked := map[string]bool{}
			for i := range batch {
				if val, ok := resources.NormalizeValue(batch[i].Record[ref.Field]); ok && !asked[val] {
					asked[val] = true
					keys = append(keys, store.KeyRef{Name: ref.Key, Value: val})
				}
			}
			if len(keys) == 0 {
				continue
			}
			scope := job.Scope()
			scope.Resource = ref.Resource
			m, err := v.Records.LookupKeys(ctx, scope, keys)
			if err != nil {
				return nil, fmt.Errorf("look up %s references: %w", ref.Resource, err)
			}
			found[ref.Field] = m
		}
	}
	parentOK := true
	if pid := parentOf(job); pid != "" && job.Options.Action != events.ActionDelete {
		scope := job.Scope()
		scope.Resource = job.Resource.Parent
		got, err := v.Records.GetData(ctx, scope, []string{pid})
		if err != nil {
			return nil, fmt.Errorf("look up parent %s: %w", pid, err)
		}
		_, parentOK = got[pid]
	}
	out := map[int][]rows.Problem{}
	for i := range batch {
		row := &batch[i]
		var problems []rows.Problem
		if !parentOK {
			problems = append(problems, rows.Problem{Code: "reference.not_found", Field: "parent_resource_id",
				Message: fmt.Sprintf("parent_resource_id: no %s record with id %q", job.Resource.Parent, parentOf(job))})
		}
		if job.Options.Action != events.ActionDelete {
			for _, ref := range refs {
				val, ok := resources.NormalizeValue(row.Record[ref.Field])
				if !ok {
					continue
				}
				if _, hit := found[ref.Field][ref.Key+"\x00"+val]; !hit {
					problems = append(problems, rows.Problem{Code: "reference.not_found", Field: ref.Field,
						Message: fmt.Sprintf("%s: no %s record with %s %q", ref.Field, ref.Resource, ref.Key, fmt.Sprint(row.Record[ref.Field]))})
				}
			}
		}
		if len(problems) > 0 {
			out[i] = problems
		}
	}
	return out, nil
}
