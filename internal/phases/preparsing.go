// Package phases holds the logic of each import phase (spec §4); the
// pipeline harness runs it, the services wire it.
package phases

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/pipeline"
	"github.com/inlet-dev/inlet/internal/rows"
)

// Preparsing removes rows that share a key (the primary key or any alternate
// key) with another row anywhere in the file, per duplicate_handling.
// Memory: the key values that more than one row holds (keyIndex), never
// the rows themselves.
type Preparsing struct{}

func (Preparsing) Name() string { return events.PhasePreparsing }

func (Preparsing) Run(ctx context.Context, job *pipeline.Job, w pipeline.Work) error {
	res := job.Resource
	seen, err := countKeys(ctx, w, res.KeyFields(), false, func(r *rows.Row, add func(name, value string)) {
		fileKeys(res, r.Data, add)
	})
	if err != nil {
		return err
	}
	useFirst := job.Options.DuplicateHandling == events.DuplicatesUseFirst
	return w.Each(ctx, func(b int, in pipeline.Input, out pipeline.Output) error {
		if seen.none() {
			return out.PassThrough() // no two rows share a key: every batch goes on as it is
		}
		var row rows.Row
		for {
			if err := in.Next(&row); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			keys := res.KeyValues(row.Data)
			// dup is the first key (by name) this row shares with another row;
			// earlier names the row holding it first, for use_first.
			dup, earlier := "", ""
			var firstRow int64
			var count int32
			for _, name := range sortedKeys(keys) {
				s := seen.get(name, keys[name], row.Num)
				if s.count > 1 && dup == "" {
					dup, firstRow, count = name, s.first, s.count
				}
				if s.first != row.Num && earlier == "" {
					earlier, firstRow = name, s.first
				}
			}
			firstOfAll := earlier == ""
			if useFirst && !firstOfAll {
				dup = earlier
			}
			switch {
			case dup == "":
				if err := out.Emit(&row); err != nil {
					return err
				}
			case useFirst && firstOfAll:
				if err := out.Emit(&row); err != nil {
					return err
				}
			default:
				p := rows.Problem{Code: "duplicate", Field: dup}
				if useFirst {
					p.Message = fmt.Sprintf("%s %q duplicates row %d (use_first keeps the first)", dup, display(row.Data, dup), firstRow)
				} else {
					p.Message = fmt.Sprintf("%s %q appears in %d rows (ignore_all skips all of them)", dup, display(row.Data, dup), count)
				}
				if err := out.Skip(&row, p); err != nil {
					return err
				}
			}
		}
	})
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// display shows a key's value as the user wrote it.
func display(data map[string]any, keyName string) string {
	parts := strings.Split(keyName, ",")
	vals := make([]string, len(parts))
	for i, f := range parts {
		vals[i] = fmt.Sprint(data[f])
	}
	return strings.Join(vals, ",")
}
