package phases_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/internal/store"
)

func seedCustomers(t *testing.T, f *fixture, o events.Options) {
	t.Helper()
	f.seed(t, scopeOf(o), map[string]map[string]any{
		"rec_ann": cust("ann@x.io", "E1", "Ann"),
		"rec_bob": cust("bob@x.io", "E2", "Bob"),
	})
	// Same keys in another organization and in test mode: never matched from acme/live.
	f.seed(t, store.Scope{Org: "other", Mode: "live", Resource: "customers"}, map[string]map[string]any{
		"rec_other": cust("new@x.io", "E50", "Other org"),
	})
	f.seed(t, store.Scope{Org: "acme", Mode: "test", Resource: "customers"}, map[string]map[string]any{
		"rec_testmode": cust("new2@x.io", "E51", "Test mode"),
	})
}

func TestTransformingInjectsIDs(t *testing.T) {
	f := newFixture(t)
	o := options(t, nil)
	seedCustomers(t, f, o)
	f.input(t, o, events.PhaseTransforming,
		[]rows.Row{
			row(1, cust(" ANN@x.io", "", "Ann")),          // primary key, other case/space → rec_ann
			row(2, cust("zed@x.io", "e2 ", "Bob as Zed")), // alternate key → rec_bob
			row(3, cust("ann@x.io", "E2", "Both")),        // ann's email, bob's external id → ambiguous
			row(4, cust("new@x.io", "E50", "New")),        // only exists in another org → create
		},
		[]rows.Row{
			row(10, cust("new2@x.io", "E51", "New too")), // only exists in test mode → create
			row(11, cust("ann@x.io", "E1", "Ann again")), // both keys → the same record: not ambiguous
		},
	)
	f.run(t, o, events.PhaseTransforming, 2)

	out := f.allOut(t, o, events.PhaseTransforming, 2)
	for n, id := range map[int64]string{1: "rec_ann", 2: "rec_bob", 11: "rec_ann"} {
		r, ok := out[n]
		if !ok {
			t.Errorf("row %d not emitted", n)
			continue
		}
		if r.ID != id || r.Op == rows.OpCreate {
			t.Errorf("row %d: id %q op %q, want existing %s", n, r.ID, r.Op, id)
		}
	}
	newIDs := map[string]bool{}
	for _, n := range []int64{4, 10} {
		r := out[n]
		if r.Op != rows.OpCreate || !strings.HasPrefix(r.ID, "rec_") || r.ID == "rec_other" || r.ID == "rec_testmode" {
			t.Errorf("row %d: id %q op %q, want a new id and op create", n, r.ID, r.Op)
		}
		newIDs[r.ID] = true
		if r.Data["name"] == nil {
			t.Errorf("row %d lost its data", n)
		}
		// A new record is its row's data, as parsing would write it.
		if !reflect.DeepEqual(r.Record, r.Data) {
			t.Errorf("row %d: record %v, want its data", n, r.Record)
		}
	}
	for _, n := range []int64{1, 2, 11} {
		if r := out[n]; r.Record != nil {
			t.Errorf("row %d of a stored record: record %v before parsing merged it", n, r.Record)
		}
	}
	if len(newIDs) != 2 {
		t.Errorf("two new rows share an id: %v", newIDs)
	}

	rej := f.allRejects(t, o, events.PhaseTransforming, 2)
	if len(rej) != 1 {
		t.Fatalf("rejects %+v, want only row 3", rej)
	}
	r := rej[3]
	if r.Code != "ambiguous" || r.Skipped || r.Phase != events.PhaseTransforming || r.Field == "" {
		t.Errorf("row 3: %+v, want a failed ambiguous reject", r)
	}
	if !strings.Contains(r.Message, "rec_ann") || !strings.Contains(r.Message, "rec_bob") {
		t.Errorf("row 3: message %q does not name both records", r.Message)
	}
	checkStats(t, f.stats(t, o, events.PhaseTransforming, 0), 4, 3, 1, 0)
	checkStats(t, f.stats(t, o, events.PhaseTransforming, 1), 2, 2, 0, 0)
}

// The id of a new record is derived, not random: a re-run of the phase (its
// batch lost before commit) assigns the same one.
func TestTransformingNewIDIsDeterministic(t *testing.T) {
	f := newFixture(t)
	o := options(t, nil)
	f.input(t, o, events.PhaseTransforming, []rows.Row{
		row(1, cust("n1@x.io", "", "N1")), row(2, cust("N2@x.io ", "", "N2")),
	})
	f.run(t, o, events.PhaseTransforming, 1)
	first := f.out(t, o, events.PhaseTransforming, 0)

	// Lose the committed batch and run the phase again.
	ctx := context.Background()
	for _, k := range []string{imports.StatsKey(o.ID, events.PhaseTransforming, 0), imports.OutKey(o.ID, events.PhaseTransforming, 0)} {
		if err := f.blobs.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	f.run(t, o, events.PhaseTransforming, 1)
	second := f.out(t, o, events.PhaseTransforming, 0)
	if len(first) != 2 || len(second) != 2 {
		t.Fatalf("rows %d then %d", len(first), len(second))
	}
	for i := range first {
		if first[i].ID == "" || first[i].ID != second[i].ID {
			t.Errorf("row %d: id %q then %q", first[i].Num, first[i].ID, second[i].ID)
		}
	}
	if first[0].ID == first[1].ID {
		t.Errorf("different keys got the same id %s", first[0].ID)
	}
	// New ids ascend with the rows, so loading them appends to the id indexes.
	if first[0].ID >= first[1].ID {
		t.Errorf("row 1 got %s, row 2 %s: not ascending", first[0].ID, first[1].ID)
	}
	// Another import never reuses them.
	o2 := options(t, nil)
	f2 := newFixture(t)
	f2.input(t, o2, events.PhaseTransforming, []rows.Row{row(2, cust("N2@x.io ", "", "N2"))})
	f2.run(t, o2, events.PhaseTransforming, 1)
	if got := f2.out(t, o2, events.PhaseTransforming, 0); len(got) != 1 || got[0].ID == "" || got[0].ID == first[1].ID {
		t.Errorf("imports %s and %s both created %v", o.ID, o2.ID, got)
	}
}

func TestTransformingDelete(t *testing.T) {
	f := newFixture(t)
	o := options(t, func(o *events.Options) { o.Action = "delete" })
	seedCustomers(t, f, o)
	f.input(t, o, events.PhaseTransforming, []rows.Row{
		row(1, cust("nobody@x.io", "", "")),
		row(2, cust("BOB@x.io", "", "")),
		row(3, cust("", "E1", "")),       // a delete may identify its record by an alternate key alone
		row(4, cust("new@x.io", "", "")), // exists only in another org
	})
	f.run(t, o, events.PhaseTransforming, 1)
	out := f.allOut(t, o, events.PhaseTransforming, 1)
	if out[2].ID != "rec_bob" || out[3].ID != "rec_ann" || len(out) != 2 {
		t.Errorf("emitted %+v, want rows 2 → rec_bob and 3 → rec_ann", out)
	}
	rej := f.allRejects(t, o, events.PhaseTransforming, 1)
	for _, n := range []int64{1, 4} {
		r, ok := rej[n]
		if !ok || r.Code != "not_found" || !r.Skipped || r.Field != "email" {
			t.Errorf("row %d: %+v, want skipped not_found on email", n, r)
		}
	}
	if !strings.Contains(rej[1].Message, "nobody@x.io") {
		t.Errorf("message %q does not name the key value", rej[1].Message)
	}
	checkStats(t, f.stats(t, o, events.PhaseTransforming, 0), 4, 2, 0, 2)
}

// fingerprintSpy records the ids whose fingerprints a phase asks for.
type fingerprintSpy struct {
	readSpy
	asked []string
}

func (s *fingerprintSpy) Fingerprints(ctx context.Context, scope store.Scope, ids []string) (map[string][]byte, error) {
	s.asked = append(s.asked, ids...)
	return s.Store.Fingerprints(ctx, scope, ids)
}

// A row whose data is its record's as stored is marked unchanged by the
// lookup that finds the record: parsing then asks the store nothing about
// it, and still passes it on unchanged.
func TestTransformingMarksStoredRowsUnchanged(t *testing.T) {
	f := newFixture(t)
	spy := &fingerprintSpy{readSpy: readSpy{Store: f.st}}
	f.records = spy
	o := options(t, nil)
	seedCustomers(t, f, o)
	f.input(t, o, events.PhaseTransforming, []rows.Row{
		row(1, cust("ann@x.io", "E1", "Ann")),       // as stored
		row(2, cust("bob@x.io", "E2", "Bob again")), // changed
		row(3, cust("bob@x.io", "E2", "Bob")),       // as stored, and a duplicate of row 2's record
		row(4, cust("cid@x.io", "E3", "Cid")),       // new
	})
	f.run(t, o, events.PhaseTransforming, 1)
	out := f.allOut(t, o, events.PhaseTransforming, 1)
	for n, want := range map[int64]string{1: rows.OpUnchanged, 2: "", 3: rows.OpUnchanged, 4: rows.OpCreate} {
		if got := out[n].Op; got != want {
			t.Errorf("transforming: row %d op %q, want %q", n, got, want)
		}
	}
	f.run(t, o, events.PhaseParsing, 1)
	if want := []string{"rec_bob"}; !slices.Equal(spy.asked, want) || !slices.Equal(spy.read, want) {
		t.Errorf("parsing asked fingerprints of %v and read %v, want %v both", spy.asked, spy.read, want)
	}
	parsed := f.allOut(t, o, events.PhaseParsing, 1)
	if r := parsed[1]; r.Op != rows.OpUnchanged || r.ID != "rec_ann" || r.Record["name"] != "Ann" {
		t.Errorf("parsing: row 1 %q %q %v, want unchanged rec_ann with its data as the record", r.Op, r.ID, r.Record)
	}
	if _, ok := parsed[3]; ok {
		t.Errorf("parsing passed on row 3, a duplicate of row 2's record")
	}
	if r := parsed[4]; r.Op != rows.OpCreate {
		t.Errorf("parsing: row 4 op %q, want create", r.Op)
	}
}
