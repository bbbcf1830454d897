package phases_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/pipeline"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/internal/store"
)

func processingInput() [][]rows.Row {
	return [][]rows.Row{
		{
			recRow(1, "rec_new1", rows.OpCreate, with(cust("n1@x.io", "N1", "New one"), "age", json.Number("21"))),
			recRow(2, "rec_ann", rows.OpUpdate, with(cust("ann@x.io", "E1", "Ann Changed"), "age", json.Number("31"))),
			recRow(3, "rec_bob", rows.OpUnchanged, cust("bob@x.io", "E2", "Bob")),
		},
		{
			recRow(4, "rec_new2", rows.OpCreate, cust("n2@x.io", "", "New two")),
		},
	}
}

func listAll(t *testing.T, f *fixture, scope store.Scope) map[string]store.Record {
	t.Helper()
	recs, err := f.st.List(context.Background(), scope, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]store.Record{}
	for _, r := range recs {
		m[r.ID] = r
	}
	return m
}

func TestProcessingWritesAndCounts(t *testing.T) {
	f := newFixture(t)
	o := options(t, nil)
	scope := scopeOf(o)
	f.seed(t, scope, map[string]map[string]any{
		"rec_ann": with(cust("ann@x.io", "E1", "Ann"), "age", 30),
		"rec_bob": cust("bob@x.io", "E2", "Bob"),
	})
	bobBefore, _ := f.record(t, scope, "rec_bob")
	f.input(t, o, events.PhaseProcessing, processingInput()...)
	f.run(t, o, events.PhaseProcessing, 2)

	s0 := f.stats(t, o, events.PhaseProcessing, 0)
	if s0.Created != 1 || s0.Updated != 1 || s0.Unchanged != 1 || s0.Deleted != 0 || s0.RowsIn != 3 || s0.RowsOut != 3 {
		t.Errorf("batch 0 stats %+v, want created/updated/unchanged 1/1/1", s0)
	}
	s1 := f.stats(t, o, events.PhaseProcessing, 1)
	if s1.Created != 1 || s1.Updated != 0 || s1.Unchanged != 0 || s1.RowsOut != 1 {
		t.Errorf("batch 1 stats %+v, want created 1", s1)
	}

	all := listAll(t, f, scope)
	if len(all) != 4 {
		t.Errorf("%d records stored, want 4: %v", len(all), all)
	}
	for id, want := range map[string]map[string]any{
		"rec_new1": {"email": "n1@x.io", "external_id": "N1", "name": "New one", "age": 21.0},
		"rec_ann":  {"email": "ann@x.io", "external_id": "E1", "name": "Ann Changed", "age": 31.0},
		"rec_bob":  {"email": "bob@x.io", "external_id": "E2", "name": "Bob"},
		"rec_new2": {"email": "n2@x.io", "name": "New two"},
	} {
		rec, got := f.record(t, scope, id)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s stored %v, want %v", id, got, want)
		}
		if id != "rec_bob" && rec.ImportID != o.ID {
			t.Errorf("%s import_id %q, want %s", id, rec.ImportID, o.ID)
		}
	}
	// The unchanged row wrote nothing.
	bobAfter, _ := f.record(t, scope, "rec_bob")
	if bobAfter.ImportID != "seed" || !bobAfter.UpdatedAt.Equal(bobBefore.UpdatedAt) {
		t.Errorf("unchanged record was written: %+v", bobAfter)
	}
	// Stored keys are usable: the new record is found by its (normalized) keys.
	ids, err := f.st.LookupKeys(context.Background(), scope, []store.KeyRef{{Name: "email", Value: "n1@x.io"}, {Name: "external_id", Value: "n1"}})
	if err != nil || ids["email\x00n1@x.io"].ID != "rec_new1" || ids["external_id\x00n1"].ID != "rec_new1" {
		t.Errorf("keys of the new record: %v %v", ids, err)
	}
	// Only ids and ops go on to cleanup (stored for an overwrite only; the
	// same work in memory shows them). Applied already, nothing is written again.
	res, _ := f.reg.Get(o.Resource)
	job := &pipeline.Job{Options: o, Resource: res, Batches: 2}
	m, err := pipeline.NewMemoryWork(job, events.PhaseProcessing, t.TempDir(), processingInput()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.phase(events.PhaseProcessing).Run(context.Background(), job, m); err != nil {
		t.Fatal(err)
	}
	batch, _, err := m.Committed(0)
	if err != nil || len(batch.Rows) != 3 || batch.Stats.Created != 1 || batch.Stats.Updated != 1 {
		t.Fatalf("processing in memory: %d rows, stats %+v, %v", len(batch.Rows), batch.Stats, err)
	}
	for _, r := range batch.Rows {
		if r.ID == "" || r.Op == "" || r.Record != nil || r.Data != nil {
			t.Errorf("processing emitted %+v", r)
		}
	}
	// Another organization sees none of it.
	if other := listAll(t, f, store.Scope{Org: "other", Mode: "live", Resource: "customers"}); len(other) != 0 {
		t.Errorf("records leaked into another organization: %v", other)
	}
}

// A redelivered message writes nothing new and reports the same counts, both
// when the batch was committed and when it was applied but its commit was lost.
func TestProcessingRedelivery(t *testing.T) {
	f := newFixture(t)
	o := options(t, nil)
	scope := scopeOf(o)
	f.seed(t, scope, map[string]map[string]any{
		"rec_ann": with(cust("ann@x.io", "E1", "Ann"), "age", 30),
		"rec_bob": cust("bob@x.io", "E2", "Bob"),
	})
	f.input(t, o, events.PhaseProcessing, processingInput()...)
	f.deliver(t, o, events.PhaseProcessing, 0, 2)
	first := f.stats(t, o, events.PhaseProcessing, 0)
	before := listAll(t, f, scope)

	check := func(when string) {
		t.Helper()
		got := f.stats(t, o, events.PhaseProcessing, 0)
		if got.Created != first.Created || got.Updated != first.Updated || got.Unchanged != first.Unchanged ||
			got.RowsIn != first.RowsIn || got.RowsOut != first.RowsOut || got.Skipped != first.Skipped {
			t.Errorf("%s: stats %+v, first %+v", when, got, first)
		}
		after := listAll(t, f, scope)
		if len(after) != len(before) {
			t.Errorf("%s: %d records, was %d", when, len(after), len(before))
		}
		for id, r := range before {
			a := after[id]
			if !a.UpdatedAt.Equal(r.UpdatedAt) || string(a.Data) != string(r.Data) {
				t.Errorf("%s: %s rewritten: %s @%v, was %s @%v", when, id, a.Data, a.UpdatedAt, r.Data, r.UpdatedAt)
			}
		}
	}

	// Same message again: the committed batch is not produced again.
	f.deliver(t, o, events.PhaseProcessing, 0, 2)
	check("redelivered after commit")

	// The store applied the batch but the stats were never committed (a crash
	// in between): the re-run must not write again, and must count the same.
	// Meanwhile someone else changed a record this batch created: a second
	// apply would overwrite it.
	ctx := context.Background()
	if err := f.blobs.Delete(ctx, imports.StatsKey(o.ID, events.PhaseProcessing, 0)); err != nil {
		t.Fatal(err)
	}
	f.seed(t, scope, map[string]map[string]any{"rec_new1": cust("n1@x.io", "N1", "Edited by a user")})
	before = listAll(t, f, scope)
	f.deliver(t, o, events.PhaseProcessing, 0, 2)
	check("redelivered after a lost commit")
	if _, got := f.record(t, scope, "rec_new1"); got["name"] != "Edited by a user" {
		t.Errorf("replayed batch overwrote a later change: %v", got)
	}
}

func TestProcessingDelete(t *testing.T) {
	f := newFixture(t)
	o := options(t, func(o *events.Options) { o.Action = "delete" })
	scope := scopeOf(o)
	f.seed(t, scope, map[string]map[string]any{
		"rec_ann": cust("ann@x.io", "E1", "Ann"),
		"rec_bob": cust("bob@x.io", "E2", "Bob"),
	})
	f.input(t, o, events.PhaseProcessing, []rows.Row{
		recRow(1, "rec_ann", rows.OpDelete, nil),
		recRow(2, "rec_gone", rows.OpDelete, nil), // deleted since parsing looked
	})
	f.run(t, o, events.PhaseProcessing, 1)
	st := f.stats(t, o, events.PhaseProcessing, 0)
	if st.Deleted != 1 || st.Skipped != 1 || st.RowsOut != 1 {
		t.Errorf("stats %+v, want deleted 1, skipped 1", st)
	}
	if _, err := f.st.Get(context.Background(), scope, "rec_ann"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rec_ann still there: %v", err)
	}
	if _, err := f.st.Get(context.Background(), scope, "rec_bob"); err != nil {
		t.Errorf("rec_bob: %v", err)
	}
	if r := f.allRejects(t, o, events.PhaseProcessing, 1)[2]; r.Code != "not_found" || !r.Skipped {
		t.Errorf("row 2: %+v", r)
	}
}

// Integers are coerced to json.Number by prevalidation so no precision is
// lost; the stored record must hold the exact value the file gave.
func TestProcessingKeepsLargeIntegers(t *testing.T) {
	f := newFixture(t)
	o := options(t, nil)
	f.input(t, o, events.PhaseProcessing, []rows.Row{
		recRow(1, "rec_big", rows.OpCreate, with(cust("big@x.io", "", "Big"), "age", json.Number("9007199254740993"))),
	})
	f.run(t, o, events.PhaseProcessing, 1)
	rec, err := f.st.Get(context.Background(), scopeOf(o), "rec_big")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rec.Data, &m); err != nil {
		t.Fatal(err)
	}
	if string(m["age"]) != "9007199254740993" {
		t.Errorf("age stored as %s, the file said 9007199254740993", m["age"])
	}
}
