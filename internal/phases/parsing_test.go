package phases_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/internal/store"
)

func with(d map[string]any, kv ...any) map[string]any {
	for i := 0; i < len(kv); i += 2 {
		d[kv[i].(string)] = kv[i+1]
	}
	return d
}

// idRow is a row as transforming emits it.
func idRow(n int64, id, op string, data map[string]any) rows.Row {
	r := row(n, data)
	r.ID, r.Op = id, op
	return r
}

// readSpy records the ids whose stored data a phase reads.
type readSpy struct {
	store.Store
	read []string
}

func (s *readSpy) GetData(ctx context.Context, scope store.Scope, ids []string) (map[string]json.RawMessage, error) {
	s.read = append(s.read, ids...)
	return s.Store.GetData(ctx, scope, ids)
}

func TestParsingDecidesOps(t *testing.T) {
	f := newFixture(t)
	spy := &readSpy{Store: f.st}
	f.records = spy
	o := options(t, nil)
	f.seed(t, scopeOf(o), map[string]map[string]any{
		"rec_ann": with(cust("ann@x.io", "E1", "Ann"), "age", 30, "vip", true),
		"rec_bob": with(cust("bob@x.io", "E2", "Bob"), "age", 40),
		"rec_cid": with(cust("cid@x.io", "E3", "Cid"), "age", 50),
		"rec_dee": cust("dee@x.io", "E4", "Dee"),
	})
	f.input(t, o, events.PhaseParsing,
		[]rows.Row{
			// Every given value equals the stored one (numbers as prevalidation coerces them).
			idRow(1, "rec_ann", "", with(cust("ann@x.io", "E1", "Ann"), "age", json.Number("30"), "vip", true)),
			// Only some fields given, all equal: the absent ones keep their stored value.
			idRow(2, "rec_bob", "", cust("bob@x.io", "", "")),
			// One field differs.
			idRow(3, "rec_cid", "", with(cust("cid@x.io", "", "Cid"), "age", json.Number("51"))),
		},
		[]rows.Row{
			// A new field on a stored record is a change.
			idRow(4, "rec_dee", "", with(cust("dee@x.io", "", ""), "vip", false)),
			// A new record.
			idRow(5, "rec_new", rows.OpCreate, with(cust("new@x.io", "", "New"), "age", json.Number("7"))),
		},
	)
	f.run(t, o, events.PhaseParsing, 2)
	out := f.allOut(t, o, events.PhaseParsing, 2)

	want := map[int64]struct {
		op  string
		rec map[string]any
	}{
		1: {rows.OpUnchanged, map[string]any{"email": "ann@x.io", "external_id": "E1", "name": "Ann", "age": 30.0, "vip": true}},
		2: {rows.OpUnchanged, map[string]any{"email": "bob@x.io", "external_id": "E2", "name": "Bob", "age": 40.0}},
		3: {rows.OpUpdate, map[string]any{"email": "cid@x.io", "external_id": "E3", "name": "Cid", "age": 51.0}},
		4: {rows.OpUpdate, map[string]any{"email": "dee@x.io", "external_id": "E4", "name": "Dee", "vip": false}},
		5: {rows.OpCreate, map[string]any{"email": "new@x.io", "name": "New", "age": 7.0}},
	}
	if len(out) != len(want) {
		t.Errorf("emitted rows %v, want %d", keysOf(out), len(want))
	}
	for n, w := range want {
		r, ok := out[n]
		if !ok {
			t.Errorf("row %d not emitted", n)
			continue
		}
		if r.Op != w.op {
			t.Errorf("row %d: op %q, want %q", n, r.Op, w.op)
		}
		if !sameJSON(t, r.Record, w.rec) {
			t.Errorf("row %d: record %v, want %v", n, r.Record, w.rec)
		}
	}
	checkStats(t, f.stats(t, o, events.PhaseParsing, 0), 3, 3, 0, 0)
	checkStats(t, f.stats(t, o, events.PhaseParsing, 1), 2, 2, 0, 0)
	// Row 1's data is the stored record byte for byte as processing writes
	// it: its fingerprint says unchanged, its record is not read. The others
	// of stored records are compared with what is stored.
	slices.Sort(spy.read)
	if want := []string{"rec_bob", "rec_cid", "rec_dee"}; !slices.Equal(spy.read, want) {
		t.Errorf("stored records read %v, want %v", spy.read, want)
	}
}

// Rows that reached the same record through different keys (preparsing could
// not see it) are duplicates, across batches, per duplicate_handling.
func TestParsingSameRecordAcrossBatches(t *testing.T) {
	input := func() [][]rows.Row {
		return [][]rows.Row{
			{idRow(1, "rec_ann", "", cust("ann@x.io", "", "Ann")), idRow(2, "rec_bob", "", cust("bob@x.io", "", "Bob"))},
			{idRow(3, "rec_x", rows.OpCreate, cust("x@x.io", "", "X"))},
			{idRow(900, "rec_ann", "", cust("other@x.io", "E1", "Ann via E1"))},
		}
	}
	cases := []struct {
		handling string
		kept     []int64
		skipped  []int64
		msg      string
		stats    [3][3]int64
	}{
		{"ignore_all", []int64{2, 3}, []int64{1, 900}, "2 rows", [3][3]int64{{2, 1, 1}, {1, 1, 0}, {1, 0, 1}}},
		{"use_first", []int64{1, 2, 3}, []int64{900}, "row 1 ", [3][3]int64{{2, 2, 0}, {1, 1, 0}, {1, 0, 1}}},
	}
	for _, c := range cases {
		t.Run(c.handling, func(t *testing.T) {
			f := newFixture(t)
			o := options(t, func(o *events.Options) { o.DuplicateHandling = events.DuplicateHandling(c.handling) })
			f.seed(t, scopeOf(o), map[string]map[string]any{
				"rec_ann": cust("ann@x.io", "E1", "Ann"),
				"rec_bob": cust("bob@x.io", "E2", "Bob"),
			})
			f.input(t, o, events.PhaseParsing, input()...)
			f.run(t, o, events.PhaseParsing, 3)
			out := f.allOut(t, o, events.PhaseParsing, 3)
			for _, n := range c.kept {
				if _, ok := out[n]; !ok {
					t.Errorf("row %d not kept", n)
				}
			}
			if len(out) != len(c.kept) {
				t.Errorf("kept %v, want %v", keysOf(out), c.kept)
			}
			rej := f.allRejects(t, o, events.PhaseParsing, 3)
			if len(rej) != len(c.skipped) {
				t.Errorf("rejected %v, want %v", keysOf(rej), c.skipped)
			}
			for _, n := range c.skipped {
				r := rej[n]
				if r.Code != "duplicate" || !r.Skipped || r.Phase != events.PhaseParsing {
					t.Errorf("row %d: %+v, want a skipped duplicate", n, r)
				}
				if !strings.Contains(r.Message, "rec_ann") || !strings.Contains(r.Message, c.msg) {
					t.Errorf("row %d: message %q should name rec_ann and %q", n, r.Message, c.msg)
				}
			}
			for b, w := range c.stats {
				checkStats(t, f.stats(t, o, events.PhaseParsing, b), w[0], w[1], 0, w[2])
			}
		})
	}
}

// A delete of a record that vanished between transforming and parsing is
// skipped, not failed; one still there becomes op delete.
func TestParsingDelete(t *testing.T) {
	f := newFixture(t)
	o := options(t, func(o *events.Options) { o.Action = "delete" })
	f.seed(t, scopeOf(o), map[string]map[string]any{"rec_ann": cust("ann@x.io", "E1", "Ann")})
	f.input(t, o, events.PhaseParsing, []rows.Row{
		idRow(1, "rec_ann", "", cust("ann@x.io", "", "")),
		idRow(2, "rec_gone", "", cust("gone@x.io", "", "")),
	})
	f.run(t, o, events.PhaseParsing, 1)
	out := f.allOut(t, o, events.PhaseParsing, 1)
	if r := out[1]; r.Op != rows.OpDelete || r.ID != "rec_ann" || len(out) != 1 {
		t.Errorf("emitted %+v, want row 1 op delete", out)
	}
	if r := f.allRejects(t, o, events.PhaseParsing, 1)[2]; r.Code != "not_found" || !r.Skipped {
		t.Errorf("row 2: %+v, want skipped not_found", r)
	}
	checkStats(t, f.stats(t, o, events.PhaseParsing, 0), 2, 1, 0, 1)
}

// sameJSON compares values as JSON: how numbers are held in memory is not the contract.
func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

// A batch of rows transforming found new or unchanged (their record their
// data), each one of a kind in the file, goes on as it came: not encoded or
// stored again. A batch with a duplicate, or a row whose record is not yet
// decided, is written as before.
func TestParsingPassesOnBatchesTransformingDecided(t *testing.T) {
	f := newFixture(t)
	o := options(t, func(o *events.Options) { o.DuplicateHandling = "ignore_all" })
	decided := func(n int64, id, op string, data map[string]any) rows.Row {
		r := idRow(n, id, op, data)
		r.Record = r.Data // as transforming writes a new or unchanged row
		return r
	}
	f.input(t, o, events.PhaseParsing,
		[]rows.Row{
			decided(1, "rec_a", rows.OpCreate, cust("a@x.io", "", "A")),
			decided(2, "rec_b", rows.OpUnchanged, cust("b@x.io", "", "B")),
		},
		[]rows.Row{
			decided(3, "rec_c", rows.OpCreate, cust("c@x.io", "", "C")),
			decided(4, "rec_c", rows.OpCreate, cust("c2@x.io", "", "C again")), // the same record as row 3
			decided(5, "rec_d", rows.OpCreate, cust("d@x.io", "", "D")),
		},
		[]rows.Row{
			idRow(6, "rec_e", rows.OpCreate, cust("e@x.io", "", "E")), // no record yet
		},
	)
	f.run(t, o, events.PhaseParsing, 3)
	ctx := context.Background()
	for b, passed := range []bool{true, false, false} {
		_, err := f.blobs.Stat(ctx, imports.OutKey(o.ID, events.PhaseParsing, b))
		if stored := err == nil; stored == passed {
			t.Errorf("batch %d: rows stored again %v, want %v", b, stored, !passed)
		}
	}
	out := f.allOut(t, o, events.PhaseParsing, 3)
	if got := slices.Sorted(maps.Keys(out)); !slices.Equal(got, []int64{1, 2, 5, 6}) {
		t.Errorf("emitted rows %v, want 1, 2, 5, 6 (3 and 4 are one record: skipped)", got)
	}
	for n, r := range out {
		if r.Record == nil || !sameJSON(t, r.Record, r.Data) {
			t.Errorf("row %d: record %v, want its data %v", n, r.Record, r.Data)
		}
	}
	checkStats(t, f.stats(t, o, events.PhaseParsing, 0), 2, 2, 0, 0)
	checkStats(t, f.stats(t, o, events.PhaseParsing, 1), 3, 1, 0, 2)
	checkStats(t, f.stats(t, o, events.PhaseParsing, 2), 1, 1, 0, 0)
}
