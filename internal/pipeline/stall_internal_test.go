package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
)

type fakeFinisher struct {
	redrives int
	finished []string
}

func (f *fakeFinisher) Finish(_ context.Context, _ events.Options, status events.Status, reason string) error {
	f.finished = append(f.finished, string(status)+": "+reason)
	return nil
}

func (f *fakeFinisher) TimeOut(context.Context, events.Options, string, time.Duration) error {
	return nil
}

func (f *fakeFinisher) Redrive(context.Context, events.Options) (bool, error) {
	f.redrives++
	return true, nil
}

// A stalled import is handed its work again once per StallAfter; it ends
// failed only after two looks, StallAfter apart, found no work held or
// waiting anywhere; any event in between starts the count again.
func TestStalledImportsAreRedrivenThenEnded(t *testing.T) {
	fin := &fakeFinisher{}
	idle := false
	d := &Deadlines{Finisher: fin, Log: zerolog.Nop(), StallAfter: 5 * time.Minute,
		WorkIdle: func(context.Context) (bool, error) { return idle, nil }}
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	imp := events.Import{Options: events.Options{ID: "imp_1"}, Status: events.StatusProcessing, CreatedAt: t0, UpdatedAt: t0}
	ctx := context.Background()
	step := func(at time.Duration, wantRedrives, wantFinished int) {
		t.Helper()
		if err := d.checkStall(ctx, imp, t0.Add(at)); err != nil {
			t.Fatal(err)
		}
		if fin.redrives != wantRedrives || len(fin.finished) != wantFinished {
			t.Fatalf("at +%s: %d redrives, %d finishes (%v); want %d, %d", at, fin.redrives, len(fin.finished), fin.finished, wantRedrives, wantFinished)
		}
	}
	step(time.Minute, 0, 0)    // moving recently
	step(6*time.Minute, 1, 0)  // stalled, but work is held somewhere: handed on again
	step(7*time.Minute, 1, 0)  // not looked at again before StallAfter
	idle = true                //
	step(12*time.Minute, 2, 0) // first idle look: handed on again
	imp.UpdatedAt = t0.Add(13 * time.Minute)
	step(14*time.Minute, 2, 0) // it moved: forgotten
	step(19*time.Minute, 3, 0) // stalled again: first idle look of the new stall
	step(25*time.Minute, 3, 1) // second idle look: nothing can move it
	if want := "failed: the import stopped moving"; len(fin.finished[0]) < len(want) || fin.finished[0][:len(want)] != want {
		t.Fatalf("finished %q", fin.finished[0])
	}
}
