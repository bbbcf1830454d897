package projector_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/projector"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/sqlite"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "inlet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newImport(t *testing.T, org, resource string, at time.Time) events.Import {
	t.Helper()
	o := events.Options{ID: imports.NewID(at), OrganizationID: org, Resource: resource, CreatedBy: "api"}
	if err := imports.Normalize(&o); err != nil {
		t.Fatal(err)
	}
	return imports.Initial(o, at)
}

// ev is one public event with its subject.
type ev struct {
	subject string
	ce      events.CloudEvent
}

// event builds the CloudEvent and subject of one public event.
func event(t *testing.T, org, resource, name, importID, ceID string, data any) ev {
	t.Helper()
	ce, err := events.New(ceID, "/test", name, importID, data)
	if err != nil {
		t.Fatal(err)
	}
	ce.Time = t0
	return ev{events.Subject(org, resource, name), ce}
}

func progress(id, phase string, batch, total int, rowsIn, failed int64) events.BatchProgress {
	return events.BatchProgress{
		ImportID: id, Phase: phase, Batch: batch, BatchesTotal: total,
		RowsIn: rowsIn, RowsOut: rowsIn - failed, RowsFailed: failed, Created: rowsIn - failed,
		StartedAt: t0.Add(time.Duration(batch) * time.Second), CompletedAt: t0.Add(time.Duration(batch+1) * time.Second),
	}
}

func apply(t *testing.T, p *projector.Projector, e ev) {
	t.Helper()
	if err := p.Apply(context.Background(), e.subject, e.ce); err != nil {
		t.Fatalf("apply %s: %v", e.subject, err)
	}
}

func getImport(t *testing.T, st store.ViewStore, id string) (store.View, events.Import) {
	t.Helper()
	v, err := st.GetView(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	imp, err := projector.ImportOf(v)
	if err != nil {
		t.Fatal(err)
	}
	return v, imp
}

func TestProgressBeforeQueuedMakesSkeletonThenFills(t *testing.T) {
	st := openStore(t)
	p := projector.New(st, zerolog.Nop())
	imp := newImport(t, "acme", "customers", t0)
	imp.Mode, imp.Action = events.ModeTest, events.ActionOverwrite

	apply(t, p, progressEvent(t, imp, progress(imp.ID, events.PhasePrevalidation, 0, 2, 10, 1)))
	v, got := getImport(t, st, imp.ID)
	// Until the import object arrives, its options are the defaults: a read
	// is an import object still (spec §1), never one with empty enums.
	if got.Mode != events.Modes[0] || got.Format != events.Formats[0] || got.Action != events.Actions[0] ||
		got.DuplicateHandling != events.DuplicateHandlings[0] || got.UploadMode != events.UploadModes[0] {
		t.Errorf("skeleton options: mode=%q format=%q action=%q duplicate_handling=%q upload_mode=%q, want the defaults",
			got.Mode, got.Format, got.Action, got.DuplicateHandling, got.UploadMode)
	}
	if v.Org != "acme" || v.Resource != "customers" || got.Status != events.StatusProcessing {
		t.Fatalf("skeleton view: org=%q resource=%q status=%q", v.Org, v.Resource, got.Status)
	}
	if !got.CreatedAt.Equal(t0) {
		t.Errorf("skeleton created_at = %v, want the id's time %v", got.CreatedAt, t0)
	}
	if got.Stats.Total != 10 || got.Stats.Failed != 1 || got.Phases[0].Status != events.PhaseStatusRunning {
		t.Errorf("skeleton stats/phases: %+v %+v", got.Stats, got.Phases[0])
	}

	apply(t, p, importEvent(t, imp, events.EventQueued))
	_, got = getImport(t, st, imp.ID)
	if got.Mode != events.ModeTest || got.Action != events.ActionOverwrite || got.CreatedBy != "api" {
		t.Errorf("queued did not fill the skeleton: mode=%q action=%q created_by=%q", got.Mode, got.Action, got.CreatedBy)
	}
	if got.Status != events.StatusProcessing {
		t.Errorf("status after queued with progress = %q, want processing (a phase picked it up)", got.Status)
	}
	if got.Stats.Total != 10 || got.Phases[0].BatchesDone != 1 || got.Phases[0].BatchesTotal != 2 {
		t.Errorf("queued lost the progress: %+v %+v", got.Stats, got.Phases[0])
	}
	if got.StartedAt == nil || !got.StartedAt.Equal(t0) {
		t.Errorf("started_at = %v, want the first batch's start", got.StartedAt)
	}
}

func progressEvent(t *testing.T, imp events.Import, bp events.BatchProgress) ev {
	return event(t, imp.OrganizationID, imp.Resource, events.EventProgress, imp.ID,
		"progress:"+imp.ID+":"+imports.ProgressKey(bp.Phase, bp.Batch), bp)
}

func importEvent(t *testing.T, imp events.Import, name string) ev {
	return event(t, imp.OrganizationID, imp.Resource, name, imp.ID, name+":"+imp.ID, imp)
}

func TestStartedThenQueuedKeepsStarted(t *testing.T) {
	st := openStore(t)
	p := projector.New(st, zerolog.Nop())
	imp := newImport(t, "acme", "customers", t0)
	started := imp
	started.Status = events.StatusProcessing
	s := t0.Add(time.Second)
	started.StartedAt, started.UpdatedAt = &s, s

	apply(t, p, importEvent(t, started, events.EventStarted))
	apply(t, p, importEvent(t, imp, events.EventQueued))
	v, got := getImport(t, st, imp.ID)
	if got.Status != events.StatusProcessing || v.Status != "processing" || got.StartedAt == nil {
		t.Fatalf("late queued regressed the view: status=%q row status=%q started_at=%v", got.Status, v.Status, got.StartedAt)
	}
}

func TestDuplicateProgressCountedOnce(t *testing.T) {
	st := openStore(t)
	p := projector.New(st, zerolog.Nop())
	imp := newImport(t, "acme", "customers", t0)
	apply(t, p, importEvent(t, imp, events.EventQueued))
	bp := progress(imp.ID, events.PhasePrevalidation, 0, 3, 100, 5)
	for range 3 {
		apply(t, p, progressEvent(t, imp, bp))
	}
	apply(t, p, progressEvent(t, imp, progress(imp.ID, events.PhasePrevalidation, 1, 3, 50, 0)))
	apply(t, p, progressEvent(t, imp, bp))
	_, got := getImport(t, st, imp.ID)
	ph := got.Phases[0]
	if ph.BatchesDone != 2 || ph.RowsIn != 150 || ph.RowsFailed != 5 || got.Stats.Total != 150 || got.Stats.Created != 145 {
		t.Fatalf("duplicates counted: phase %+v stats %+v", ph, got.Stats)
	}
}

func TestTerminalNeverChanges(t *testing.T) {
	st := openStore(t)
	p := projector.New(st, zerolog.Nop())
	imp := newImport(t, "acme", "customers", t0)
	apply(t, p, importEvent(t, imp, events.EventQueued))

	final := imp
	imports.Apply(&final, imports.Progress{"x": progress(imp.ID, events.PhasePrevalidation, 0, 1, 7, 0)}, nil)
	imports.Finish(&final, events.StatusCompleted, "", t0.Add(time.Minute))
	apply(t, p, importEvent(t, final, events.EventCompleted))
	before, _ := getImport(t, st, imp.ID)

	failed := final
	imports.Finish(&failed, events.StatusFailed, "late", t0.Add(2*time.Minute))
	apply(t, p, importEvent(t, failed, events.EventFailed))
	apply(t, p, progressEvent(t, imp, progress(imp.ID, events.PhaseProcessing, 0, 1, 7, 7)))
	apply(t, p, importEvent(t, imp, events.EventStarted))
	apply(t, p, event(t, "acme", "customers", events.EventPhaseCompleted, imp.ID, "pc", events.PhaseCompleted{ImportID: imp.ID, Phase: events.PhaseCleanup}))

	after, got := getImport(t, st, imp.ID)
	if string(after.Doc) != string(before.Doc) || after.Status != "completed" {
		t.Fatalf("terminal view changed:\nbefore %s\nafter  %s", before.Doc, after.Doc)
	}
	want, _ := json.Marshal(final)
	have, _ := json.Marshal(got)
	if string(want) != string(have) {
		t.Errorf("terminal view is not the completion's import object:\nwant %s\nhave %s", want, have)
	}
}

func TestConcurrentApplyLosesNothing(t *testing.T) {
	st := openStore(t)
	p := projector.New(st, zerolog.Nop())
	imp := newImport(t, "acme", "customers", t0)
	const batches = 40
	var wg sync.WaitGroup
	errs := make(chan error, 4*batches+1)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if g == 0 {
				e := importEvent(t, imp, events.EventQueued)
				errs <- p.Apply(context.Background(), e.subject, e.ce)
			}
			// Every goroutine applies every batch: each must count once.
			for b := range batches {
				e := progressEvent(t, imp, progress(imp.ID, events.PhasePreparsing, (b+g*7)%batches, batches, 10, 1))
				errs <- p.Apply(context.Background(), e.subject, e.ce)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	_, got := getImport(t, st, imp.ID)
	ph := got.Phases[1]
	if ph.BatchesDone != batches || ph.RowsIn != 10*batches || ph.Status != events.PhaseStatusCompleted {
		t.Fatalf("concurrent apply: %+v", ph)
	}
	if got.Mode != "live" {
		t.Errorf("queued applied concurrently was lost: mode=%q", got.Mode)
	}
}

// The view's phases and stats must equal what imports.Apply (cleanup's
// computation) makes of the same batch results, in any arrival order.
func TestViewMatchesImportsApply(t *testing.T) {
	st := openStore(t)
	p := projector.New(st, zerolog.Nop())
	imp := newImport(t, "acme", "customers", t0)
	rng := rand.New(rand.NewSource(1))
	pr := imports.Progress{}
	var list []events.BatchProgress
	for i, phase := range events.Phases[:6] {
		for b := range 3 + i {
			bp := progress(imp.ID, phase, b, 3+i, int64(rng.Intn(100)), int64(rng.Intn(5)))
			bp.Skipped, bp.Warnings, bp.Updated = int64(rng.Intn(3)), int64(rng.Intn(3)), int64(rng.Intn(9))
			pr.Add(bp)
			list = append(list, bp, bp)
		}
	}
	rng.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	apply(t, p, importEvent(t, imp, events.EventQueued))
	for _, bp := range list {
		apply(t, p, progressEvent(t, imp, bp))
	}
	want := imp
	imports.Apply(&want, pr, nil)
	_, got := getImport(t, st, imp.ID)
	if !reflect.DeepEqual(got.Stats, want.Stats) {
		t.Errorf("stats: view %+v, imports.Apply %+v", got.Stats, want.Stats)
	}
	wp, _ := json.Marshal(want.Phases)
	gp, _ := json.Marshal(got.Phases)
	if string(wp) != string(gp) {
		t.Errorf("phases:\nview  %s\napply %s", gp, wp)
	}
}

func TestMalformedAndUnknownEvents(t *testing.T) {
	st := openStore(t)
	p := projector.New(st, zerolog.Nop())
	ctx := context.Background()
	ce := events.CloudEvent{Data: json.RawMessage(`{"id": 1}`)}
	if err := p.Apply(ctx, "imports.acme.customers.queued", ce); !errors.Is(err, projector.ErrMalformed) {
		t.Errorf("queued with a numeric id: err = %v, want ErrMalformed", err)
	}
	if err := p.Apply(ctx, "imports.acme.*.queued", ce); !errors.Is(err, projector.ErrMalformed) {
		t.Errorf("wildcard subject: err = %v, want ErrMalformed", err)
	}
	bad := events.CloudEvent{Data: json.RawMessage(`{"import_id":"imp_x","phase":"parsing","batch":-1}`)}
	if err := p.Apply(ctx, "imports.acme.customers.progress", bad); !errors.Is(err, projector.ErrMalformed) {
		t.Errorf("negative batch: err = %v, want ErrMalformed", err)
	}
	if err := p.Apply(ctx, "imports.acme.customers.some_future_event", ce); err != nil {
		t.Errorf("unknown event: %v, want it ignored", err)
	}
	views, err := st.ListViews(ctx, store.ViewFilter{})
	if err != nil || len(views) != 0 {
		t.Errorf("malformed events created views: %d, %v", len(views), err)
	}
}

func TestRequestedShowsImportBeforeQueued(t *testing.T) {
	st := openStore(t)
	p := projector.New(st, zerolog.Nop())
	id := imports.NewID(t0)
	req := events.ImportRequested{
		Options: events.Options{ID: id, Resource: "customers"},
		Source:  &events.Source{Key: imports.SourceKey(id, "a.csv"), Name: "a.csv"},
	}
	apply(t, p, event(t, "acme", "customers", events.EventRequested, id, "req:"+id, req))
	v, got := getImport(t, st, id)
	if v.Org != "acme" || got.OrganizationID != "acme" || got.Status != events.StatusQueued || got.File.Name != "a.csv" {
		t.Fatalf("requested view: org=%q status=%q file=%+v", got.OrganizationID, got.Status, got.File)
	}
	imp := newImport(t, "acme", "customers", t0)
	imp.ID, imp.Links.Self = id, "/v1/imports/"+id
	imp.File.Size = 42
	apply(t, p, importEvent(t, imp, events.EventQueued))
	apply(t, p, event(t, "acme", "customers", events.EventRequested, id, "req:"+id, req))
	_, got = getImport(t, st, id)
	if got.File.Size != 42 {
		t.Errorf("a repeated request replaced the queued import object: file %+v", got.File)
	}
}

// Any arrival order of the same events gives the same stored view: live
// replicas, redeliveries and a rebuild all agree.
func TestViewIndependentOfOrder(t *testing.T) {
	imp := newImport(t, "acme", "customers", t0)
	started := imp
	s := t0.Add(30 * time.Second) // later than the first batch's start
	started.Status, started.StartedAt, started.UpdatedAt = events.StatusProcessing, &s, s
	list := []ev{
		importEvent(t, imp, events.EventQueued),
		event(t, "acme", "customers", events.EventPhaseCompleted, imp.ID, "pc", events.PhaseCompleted{ImportID: imp.ID, Phase: events.PhasePrevalidation, BatchesTotal: 2, CompletedAt: t0.Add(time.Minute)}),
	}
	for b := range 2 {
		list = append(list, progressEvent(t, imp, progress(imp.ID, events.PhasePrevalidation, b, 2, 10, 1)))
		list = append(list, progressEvent(t, imp, progress(imp.ID, events.PhasePreparsing, b, 3, 9, 0)))
	}
	// Without a started event started_at comes from the earliest batch.
	got := sameViewInAnyOrder(t, list)
	if got.StartedAt == nil || !got.StartedAt.Equal(t0) || got.Phases[0].Status != events.PhaseStatusCompleted || got.Phases[1].Status != events.PhaseStatusRunning {
		t.Fatalf("view: started_at %v phases %+v", got.StartedAt, got.Phases[:2])
	}
	got = sameViewInAnyOrder(t, append(list, importEvent(t, started, events.EventStarted)))
	if got.StartedAt == nil || !got.StartedAt.Equal(s) {
		t.Fatalf("started event's started_at lost: %v", got.StartedAt)
	}
}

func sameViewInAnyOrder(t *testing.T, list []ev) events.Import {
	t.Helper()
	st := openStore(t)
	p := projector.New(st, zerolog.Nop())
	id := list[0].ce.Subject
	rng := rand.New(rand.NewSource(7))
	var first string
	var firstImp events.Import
	for round := range 12 {
		if err := st.ResetViews(context.Background()); err != nil {
			t.Fatal(err)
		}
		rng.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
		for _, e := range list {
			apply(t, p, e)
		}
		v, got := getImport(t, st, id)
		if round == 0 {
			first, firstImp = string(v.Doc), got
		} else if string(v.Doc) != first {
			t.Fatalf("order %d gave another view:\n%s\n%s", round, v.Doc, first)
		}
	}
	return firstImp
}
