package pipeline

import (
	"context"
	"fmt"
	"testing"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/rows"
)

// The Splitter keeps every batch until the file ends (their stats go last),
// so what it keeps of a written batch must not grow with the batch: no
// writer, no buffer, no key summary — those are in the blob store by then.
func TestSplitterKeepsOnlyCountsOfWrittenBatches(t *testing.T) {
	ctx := context.Background()
	blobs, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := New(&Env{Blobs: blobs, BatchSize: 10, TempDir: t.TempDir(), Log: zerolog.Nop()})
	job := &Job{Options: events.Options{ID: "imp_splitter"}}
	sp := &Splitter{h: h, job: job, phase: events.PhasePrevalidation}
	for n := int64(1); n <= 35; n++ {
		row := rows.Row{Num: n, Data: map[string]any{"email": fmt.Sprintf("u%d@x.io", n)}}
		if err := sp.Emit(ctx, &row); err != nil {
			t.Fatal(err)
		}
		var keys KeySummary
		keys.Add("email", row.Data["email"].(string), n)
		sp.Summarize(keys)
	}
	batches, err := sp.close(ctx)
	if err != nil || batches != 4 {
		t.Fatalf("close: %d batches, %v", batches, err)
	}
	for b, out := range sp.done {
		if out.rowsEnc != nil || out.rejEnc != nil || out.keys != nil {
			t.Errorf("batch %d still holds its writers or summary after it was written", b)
		}
		info, err := blobs.Stat(ctx, imports.KeysKey(job.ID(), events.PhasePrevalidation, b))
		if err != nil || info.Size != int64(out.stats.RowsOut)*KeySummaryEntry {
			t.Errorf("batch %d: summary %+v %v, want %d entries", b, info, err, out.stats.RowsOut)
		}
	}
}
