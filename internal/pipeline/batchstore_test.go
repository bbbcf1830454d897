package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/rows"
)

type discardPublisher struct{}

func (discardPublisher) Publish(context.Context, string, string, []byte) error         { return nil }
func (discardPublisher) PublishEvent(context.Context, string, events.CloudEvent) error { return nil }

// batchStores are every batchStore, each given the input batches of phase
// (what the phase before it committed) and returning the Work of phase.
var batchStores = map[string]func(t *testing.T, job *Job, phase string, input [][]rows.Row) (*work, func()){
	"blob": func(t *testing.T, job *Job, phase string, input [][]rows.Row) (*work, func()) {
		blobs, err := local.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		h := New(&Env{Blobs: blobs, Pub: discardPublisher{}, Log: zerolog.Nop(), Source: "test", TempDir: t.TempDir()})
		store := blobBatches{h}
		prev := Flow[flowIndex(phase)-1].Phase
		for b, batch := range input {
			out, err := h.newOutput(store, job, prev, b)
			if err != nil {
				t.Fatal(err)
			}
			for i := range batch {
				if err := out.Emit(&batch[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := out.commit(context.Background()); err != nil {
				t.Fatal(err)
			}
			out.discard()
		}
		stop := func() {
			if err := h.putJSON(context.Background(), imports.InterruptKey(job.ID()), stopRequest{Interrupt: events.Interrupt{ImportID: job.ID()}}); err != nil {
				t.Fatal(err)
			}
		}
		return h.newWork(store, job, phase, allBatches(job.Batches)), stop
	},
	"memory": func(t *testing.T, job *Job, phase string, input [][]rows.Row) (*work, func()) {
		m, err := NewMemoryWork(job, phase, t.TempDir(), input...)
		if err != nil {
			t.Fatal(err)
		}
		return m.work, m.Interrupt
	},
}

func allBatches(n int) []int {
	bs := make([]int, n)
	for b := range bs {
		bs[b] = b
	}
	return bs
}

// committedBatch reads batch b of phase back through the store.
func committedBatch(t *testing.T, s batchStore, id, phase string, b int) (got []rows.Row, st events.BatchProgress, keys KeySummary) {
	t.Helper()
	ctx := context.Background()
	if ok, err := s.committed(ctx, id, phase, b); err != nil || !ok {
		t.Fatalf("%s batch %d: committed %v, %v", phase, b, ok, err)
	}
	in := &input{ctx: ctx, store: s, id: id, phase: phase, batch: b}
	defer in.Close()
	got, err := in.ReadAll()
	if err != nil {
		t.Fatalf("%s batch %d: %v", phase, b, err)
	}
	n, _, err := s.passed(ctx, id, phase, b)
	if err != nil {
		t.Fatal(err)
	}
	st.RowsOut = n
	keys, _, err = s.keys(ctx, id, phase, b)
	if err != nil {
		t.Fatal(err)
	}
	return got, st, keys
}

func nums(rs []rows.Row) []int64 {
	var ns []int64
	for _, r := range rs {
		ns = append(ns, r.Num)
	}
	return ns
}

// Every batchStore keeps one contract: what a phase commits through Output is
// what the next reads through Input, a pass-through (of a pass-through) reads
// as its input, a committed batch is not produced again, and an interrupt
// commits the remaining batches empty.
func TestBatchStoresKeepTheBatchIOContract(t *testing.T) {
	for name, newWork := range batchStores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			mk := func(n, from int64) []rows.Row {
				var rs []rows.Row
				for i := from; i < from+n; i++ {
					rs = append(rs, rows.Row{Num: i, Data: map[string]any{"email": fmt.Sprintf("u%d@x", i)}})
				}
				return rs
			}
			input := [][]rows.Row{mk(6, 1), mk(3, 7), nil}
			job := &Job{Options: events.Options{ID: imports.NewID(time.Now())}, Batches: len(input)}
			w, _ := newWork(t, job, events.PhaseTransforming, input)
			produced := 0
			produce := func(b int, in Input, out Output) error {
				produced++
				if b == 1 {
					return out.PassThrough()
				}
				return in.ForEach(func(r *rows.Row) error {
					switch r.Num % 3 {
					case 0:
						return out.Reject(r, rows.Problem{Code: "bad", Field: "email", Message: "bad email"})
					case 1:
						return out.Skip(r, rows.Problem{Code: "dup", Message: "duplicate"})
					}
					out.SummarizeKey("email", r.Data["email"].(string), r.Num)
					return out.Emit(r)
				})
			}
			if err := w.Each(ctx, produce); err != nil {
				t.Fatal(err)
			}
			if produced != 3 {
				t.Fatalf("produced %d batches, want 3", produced)
			}
			got, _, keys := committedBatch(t, w.store, job.ID(), events.PhaseTransforming, 0)
			if !slices.Equal(nums(got), []int64{2, 5}) || len(keys) != 2*KeySummaryEntry {
				t.Fatalf("batch 0: rows %v, %d summary bytes", nums(got), len(keys))
			}
			got, st, _ := committedBatch(t, w.store, job.ID(), events.PhaseTransforming, 1)
			if !slices.Equal(nums(got), []int64{7, 8, 9}) || st.RowsOut != 3 {
				t.Fatalf("passed-on batch 1: rows %v, %d out", nums(got), st.RowsOut)
			}
			if got, _, _ := committedBatch(t, w.store, job.ID(), events.PhaseTransforming, 2); len(got) != 0 {
				t.Fatalf("empty batch 2 reads %d rows", len(got))
			}

			// Delivered again, nothing is produced again.
			again := w.h.newWork(w.store, job, events.PhaseTransforming, allBatches(3))
			produced = 0
			if err := again.Each(ctx, produce); err != nil || produced != 0 {
				t.Fatalf("again: produced %d, %v", produced, err)
			}

			// The next phase passes batch 1 on again, and one after it reads it.
			parse := w.h.newWork(w.store, job, events.PhaseParsing, allBatches(3))
			if err := parse.Each(ctx, func(b int, in Input, out Output) error { return out.PassThrough() }); err != nil {
				t.Fatal(err)
			}
			if got, st, _ := committedBatch(t, w.store, job.ID(), events.PhaseParsing, 1); !slices.Equal(nums(got), []int64{7, 8, 9}) || st.RowsOut != 3 {
				t.Fatalf("batch 1 passed on twice: rows %v, %d out", nums(got), st.RowsOut)
			}
		})
	}
}

func TestBatchStoresCommitInterruptedBatchesEmpty(t *testing.T) {
	for name, newWork := range batchStores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			input := [][]rows.Row{{{Num: 1}}, {{Num: 2}}}
			job := &Job{Options: events.Options{ID: imports.NewID(time.Now())}, Batches: len(input)}
			w, stop := newWork(t, job, events.PhaseValidation, input)
			stop()
			if stopped, err := w.Interrupted(ctx); err != nil || !stopped {
				t.Fatalf("interrupted: %v, %v", stopped, err)
			}
			err := w.Each(ctx, func(b int, in Input, out Output) error { return errors.New("produced after the interrupt") })
			if err != nil {
				t.Fatal(err)
			}
			for b := range input {
				if got, st, _ := committedBatch(t, w.store, job.ID(), events.PhaseValidation, b); len(got) != 0 || st.RowsOut != 0 {
					t.Fatalf("batch %d: %d rows after the interrupt", b, len(got))
				}
			}
		})
	}
}
