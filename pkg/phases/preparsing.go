// Package phases holds the logic of each import phase (spec §4); the
// pipeline harness runs it, the services wire it.
package phases

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/pipeline"
	"github.com/inlet-dev/inlet/pkg/rows"
)

// Preparsing removes rows that share a key (the primary key or any alternate
// key) with another row anywhere in the file, per duplicate_handling.
// Memory: 16 bytes of hash plus bookkeeping per distinct key value in the
// file, never the rows themselves.
type Preparsing struct{}

func (Preparsing) Name() string { return events.PhasePreparsing }

type keyHash [16]byte

type keySeen struct {
	first int64 // row number of the first row holding the key value
	count int32
}

// keyCounts remembers, per key value of the whole file, the first row that
// holds it and how many do: 16 bytes of hash per value, never the rows.
type keyCounts map[keyHash]keySeen

func hashKey(name, value string) keyHash {
	sum := sha256.Sum256([]byte(name + "\x00" + value))
	var h keyHash
	copy(h[:], sum[:16])
	return h
}

func (k keyCounts) add(name, value string, row int64) {
	h := hashKey(name, value)
	s, ok := k[h]
	if !ok {
		s.first = row
	}
	s.count++
	k[h] = s
}

func (k keyCounts) get(name, value string) keySeen { return k[hashKey(name, value)] }

// merge adds the counts of other (another part of the file).
func (k keyCounts) merge(other keyCounts) {
	for h, o := range other {
		s, ok := k[h]
		if !ok || o.first < s.first {
			s.first = o.first
		}
		s.count += o.count
		k[h] = s
	}
}

// countKeys scans every input batch of w, adding the keys fn gives for each
// row; fn sees only the rows' Num, ID, Op and the fields of Data named.
// Batches are read several at once, each into its own counts.
func countKeys(ctx context.Context, w *pipeline.Work, fields []string, fn func(r *rows.Row, add func(name, value string))) (keyCounts, error) {
	counts := keyCounts{}
	var mu sync.Mutex
	err := w.Scan(ctx, func(b int, in *pipeline.Input) error {
		in.Only(fields...)
		part := keyCounts{}
		err := in.ForEach(func(r *rows.Row) error {
			fn(r, func(name, value string) { part.add(name, value, r.Num) })
			return nil
		})
		mu.Lock()
		counts.merge(part)
		mu.Unlock()
		return err
	})
	return counts, err
}

func (Preparsing) Run(ctx context.Context, job *pipeline.Job, w *pipeline.Work) error {
	res := job.Resource
	seen, err := countKeys(ctx, w, res.KeyFields(), func(r *rows.Row, add func(name, value string)) {
		for name, v := range res.KeyValues(r.Data) {
			add(name, v)
		}
	})
	if err != nil {
		return err
	}
	useFirst := job.Options.DuplicateHandling == "use_first"
	return w.Each(ctx, func(b int, in *pipeline.Input, out *pipeline.Output) error {
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
				s := seen.get(name, keys[name])
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
