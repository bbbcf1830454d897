package projector_test

import (
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/projector"
)

// Progress, fed every batch of every phase in a shuffled order with
// repeats: the percent and processed never go back, the percent stays below
// 100 until the import completed, and the end is exact.
func TestProgressNeverGoesBackInAnyOrder(t *testing.T) {
	const batches, rows = 4, 10
	for seed := range int64(5) {
		st := openStore(t)
		p := projector.New(st, zerolog.Nop())
		imp := newImport(t, "acme", "customers", t0)
		var list []ev
		for i, phase := range events.Phases {
			for b := range batches {
				bp := events.BatchProgress{ImportID: imp.ID, Phase: phase, Batch: b, BatchesTotal: batches, RowsIn: rows, RowsOut: rows,
					StartedAt: t0.Add(time.Duration(i*batches+b) * time.Second), CompletedAt: t0.Add(time.Duration(i*batches+b+1) * time.Second)}
				if phase == events.PhaseProcessing {
					bp.Created = rows
				}
				list = append(list, progressEvent(t, imp, bp))
			}
		}
		list = append(list, list[:9]...) // redeliveries
		list = append(list, importEvent(t, imp, events.EventQueued))
		rand.New(rand.NewSource(seed)).Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
		var last events.Import
		for n, e := range list {
			apply(t, p, e)
			_, got := getImport(t, st, imp.ID)
			if got.Progress.Percent < last.Progress.Percent || got.Stats.Processed < last.Stats.Processed {
				t.Fatalf("seed %d event %d: percent %v → %v, processed %d → %d: went back", seed, n, last.Progress.Percent, got.Progress.Percent, last.Stats.Processed, got.Stats.Processed)
			}
			if got.Progress.Percent >= 100 || got.Stats.Processed > rows*batches {
				t.Fatalf("seed %d event %d: percent %v, processed %d before the end", seed, n, got.Progress.Percent, got.Stats.Processed)
			}
			last = got
		}
		if last.Progress.Percent != 99.9 || last.Stats.Processed != rows*batches || last.Progress.RowsPerSecond == nil {
			t.Errorf("seed %d: every batch committed, not ended: %+v processed %d", seed, last.Progress, last.Stats.Processed)
		}
		done := last
		imports.Finish(&done, events.StatusCompleted, "", t0.Add(time.Duration(7*batches+1)*time.Second))
		done.StartedAt = &t0
		imports.SetProgress(&done, 0, *done.CompletedAt)
		apply(t, p, importEvent(t, done, events.EventCompleted))
		_, got := getImport(t, st, imp.ID)
		if got.Progress.Percent != 100 || got.Progress.ETA != nil || got.Stats.Processed != rows*batches || got.Progress.RowsPerSecond == nil {
			t.Errorf("seed %d: completed: %+v processed %d", seed, got.Progress, got.Stats.Processed)
		}
	}
}

// The numbers themselves, in pipeline order: each phase a seventh, done in
// the share of its batches; processed the rows' worth of it; the rate and
// the ETA measured from the start to the last commit.
func TestProgressNumbers(t *testing.T) {
	st := openStore(t)
	p := projector.New(st, zerolog.Nop())
	imp := newImport(t, "acme", "customers", t0)
	apply(t, p, importEvent(t, imp, events.EventQueued))
	_, got := getImport(t, st, imp.ID)
	if got.Progress.Percent != 0 || got.Progress.RowsPerSecond != nil || got.Progress.ETA != nil || got.Stats.Processed != 0 {
		t.Fatalf("queued: %+v processed %d, want nothing known", got.Progress, got.Stats.Processed)
	}
	bp := func(phase string, b int, at time.Duration) events.BatchProgress {
		return events.BatchProgress{ImportID: imp.ID, Phase: phase, Batch: b, BatchesTotal: 4, RowsIn: 100, RowsOut: 100,
			StartedAt: t0, CompletedAt: t0.Add(at)}
	}
	for b := range 4 {
		apply(t, p, progressEvent(t, imp, bp(events.PhasePrevalidation, b, 10*time.Second)))
	}
	dup := bp(events.PhasePreparsing, 0, 20*time.Second)
	dup.Skipped, dup.RowsOut = 3, 97
	apply(t, p, progressEvent(t, imp, dup))
	apply(t, p, progressEvent(t, imp, bp(events.PhasePreparsing, 1, 20*time.Second)))
	_, got = getImport(t, st, imp.ID)
	// (1 + 2/4) / 7 = 21.43% of 400 rows in 20 s.
	if got.Progress.Percent != 21.4 || got.Stats.Processed != 3 || got.Stats.Skipped != 3 {
		t.Errorf("percent %v processed %d skipped %d, want 21.4, 3 (the buckets' sum: spec §3), 3", got.Progress.Percent, got.Stats.Processed, got.Stats.Skipped)
	}
	if r := got.Progress.RowsPerSecond; r == nil || *r != 4.3 {
		t.Errorf("rows_per_second %v, want 4.3 (400 × 3/14 rows' worth in 20 s)", r)
	}
	// The rest, 11/14 of the work, at 3/14 in 20 s: 73.3 s after the last commit.
	if eta := got.Progress.ETA; eta == nil || !eta.Equal(t0.Add(20*time.Second+73*time.Second)) {
		t.Errorf("eta %v, want %v", eta, t0.Add(93*time.Second))
	}
	if ph := got.Phases[1]; ph.RowsSkipped != 3 || ph.RowsFailed != 0 {
		t.Errorf("preparsing entry: rows_skipped %d rows_failed %d, want 3 and 0", ph.RowsSkipped, ph.RowsFailed)
	}
	// A failed import keeps the percent it got to, below 100.
	failed := got
	imports.Finish(&failed, events.StatusFailed, "broke", t0.Add(time.Minute))
	apply(t, p, importEvent(t, failed, events.EventFailed))
	_, got = getImport(t, st, imp.ID)
	if got.Progress.Percent != 21.4 || got.Progress.ETA != nil || got.Stats.Processed != got.Stats.Skipped {
		t.Errorf("failed: %+v processed %d, want 21.4%%, no ETA, processed the buckets' sum", got.Progress, got.Stats.Processed)
	}
}

// A child (any import naming a parent_import_id: a retry, a revert) is
// listed by its parent once, in id order, whatever events of either come
// after; a child of another organization is not listed.
func TestParentListsItsChildren(t *testing.T) {
	st := openStore(t)
	p := projector.New(st, zerolog.Nop())
	parent := newImport(t, "acme", "customers", t0)
	parent.Status = events.StatusProcessing
	apply(t, p, importEvent(t, parent, events.EventStarted))

	child := func(org string, at time.Time, action events.Action) events.Import {
		o := events.Options{ID: imports.NewID(at), OrganizationID: org, Resource: "customers", ParentImportID: parent.ID, Action: action}
		if err := imports.Normalize(&o); err != nil {
			t.Fatal(err)
		}
		return imports.Initial(o, at)
	}
	second := child("acme", t0.Add(2*time.Minute), events.ActionMerge)
	first := child("acme", t0.Add(time.Minute), events.ActionRevert)
	foreign := child("globex", t0.Add(3*time.Minute), events.ActionMerge)
	req := func(c events.Import) ev {
		return event(t, c.OrganizationID, c.Resource, events.EventRequested, c.ID, "req:"+c.ID, events.ImportRequested{Options: c.Options})
	}
	apply(t, p, req(second))
	apply(t, p, importEvent(t, second, events.EventQueued))
	apply(t, p, req(first))
	apply(t, p, req(foreign))
	apply(t, p, req(second))
	done := parent
	imports.Finish(&done, events.StatusCompleted, "", t0.Add(time.Hour))
	apply(t, p, importEvent(t, done, events.EventCompleted))
	apply(t, p, importEvent(t, second, events.EventStarted))

	_, got := getImport(t, st, parent.ID)
	if want := []string{first.ID, second.ID}; !slices.Equal(got.Children, want) || got.Status != events.StatusCompleted {
		t.Errorf("parent: children %v status %s, want %v (oldest first, once, not the other organization's) and completed", got.Children, got.Status, want)
	}
	_, c := getImport(t, st, second.ID)
	if c.Links.Parent != "/v1/imports/"+parent.ID || c.ParentImportID != parent.ID || len(c.Children) != 0 {
		t.Errorf("child: links %+v parent_import_id %q children %v", c.Links, c.ParentImportID, c.Children)
	}
	if _, f := getImport(t, st, foreign.ID); f.Status != events.StatusQueued {
		t.Errorf("a retry without a file is queued at once (its rows are its parent's), got %s", f.Status)
	}
}

func TestChildrenAreBounded(t *testing.T) {
	st := openStore(t)
	p := projector.New(st, zerolog.Nop())
	parent := newImport(t, "acme", "customers", t0)
	done := parent
	imports.Finish(&done, events.StatusCompleted, "", t0.Add(time.Hour))
	apply(t, p, importEvent(t, done, events.EventCompleted))
	for i := range projector.MaxChildren + 5 {
		at := t0.Add(time.Duration(i+1) * time.Second)
		o := events.Options{ID: imports.NewID(at), OrganizationID: "acme", Resource: "customers", ParentImportID: parent.ID}
		if err := imports.Normalize(&o); err != nil {
			t.Fatal(err)
		}
		apply(t, p, event(t, "acme", "customers", events.EventRequested, o.ID, "req:"+o.ID, events.ImportRequested{Options: o}))
	}
	if _, got := getImport(t, st, parent.ID); len(got.Children) != projector.MaxChildren {
		t.Errorf("the parent lists %d children, want the first %d", len(got.Children), projector.MaxChildren)
	}
}
