package phases_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/rows"
)

// dupFile is four batches: row 1 (batch 0) and row 1000 (batch 3) share the
// email (written differently); rows 5 and 6 share only the external_id.
func dupFile() [][]rows.Row {
	return [][]rows.Row{
		{row(1, cust("ann@x.io", "E1", "Ann")), row(2, cust("bob@x.io", "E2", "Bob"))},
		{row(5, cust("eve@x.io", "E7", "Eve")), row(6, cust("fay@x.io", " e7 ", "Fay"))},
		{row(7, cust("gus@x.io", "", "Gus"))},
		{row(8, cust("hal@x.io", "E8", "Hal")), row(1000, cust("  ANN@X.io ", "E1000", "Ann again"))},
	}
}

func TestPreparsingDuplicates(t *testing.T) {
	cases := []struct {
		handling string
		kept     []int64
		skipped  map[int64]string // row → key field it duplicates
		stats    [4][3]int64      // per batch: in, out, skipped
	}{
		{"ignore_all", []int64{2, 7, 8}, map[int64]string{1: "email", 1000: "email", 5: "external_id", 6: "external_id"},
			[4][3]int64{{2, 1, 1}, {2, 0, 2}, {1, 1, 0}, {2, 1, 1}}},
		{"use_first", []int64{1, 2, 5, 7, 8}, map[int64]string{1000: "email", 6: "external_id"},
			[4][3]int64{{2, 2, 0}, {2, 1, 1}, {1, 1, 0}, {2, 1, 1}}},
	}
	for _, c := range cases {
		t.Run(c.handling, func(t *testing.T) {
			f := newFixture(t)
			o := options(t, func(o *events.Options) { o.DuplicateHandling = events.DuplicateHandling(c.handling) })
			f.input(t, o, events.PhasePreparsing, dupFile()...)
			f.run(t, o, events.PhasePreparsing, 4)

			out := f.allOut(t, o, events.PhasePreparsing, 4)
			if len(out) != len(c.kept) {
				t.Errorf("kept rows %v, want %v", keysOf(out), c.kept)
			}
			for _, n := range c.kept {
				r, ok := out[n]
				if !ok {
					t.Errorf("row %d was not kept", n)
					continue
				}
				// Rows pass on unchanged.
				if r.Data["name"] == nil || string(r.Raw) == "" {
					t.Errorf("row %d lost its data: %+v", n, r)
				}
			}
			rej := f.allRejects(t, o, events.PhasePreparsing, 4)
			if len(rej) != len(c.skipped) {
				t.Errorf("rejected rows %v, want %v", rej, c.skipped)
			}
			for n, field := range c.skipped {
				r, ok := rej[n]
				if !ok {
					t.Errorf("row %d was not skipped", n)
					continue
				}
				if r.Code != "duplicate" || r.Field != field || !r.Skipped || r.Phase != events.PhasePreparsing {
					t.Errorf("row %d: %+v, want a skipped duplicate of %s", n, r, field)
				}
				if !strings.Contains(r.Message, field) {
					t.Errorf("row %d: message %q does not name the key %s", n, r.Message, field)
				}
				if len(r.Data) == 0 {
					t.Errorf("row %d: reject lost the raw row", n)
				}
			}
			if c.handling == "use_first" {
				if m := rej[1000].Message; !strings.Contains(m, "row 1 ") || !strings.Contains(m, "ANN@X.io") {
					t.Errorf("row 1000: message %q does not name the first row (1) and the value", m)
				}
				if m := rej[6].Message; !strings.Contains(m, "row 5") {
					t.Errorf("row 6: message %q does not name the first row (5)", m)
				}
			} else {
				if m := rej[1].Message; !strings.Contains(m, "2 rows") {
					t.Errorf("row 1: message %q does not say how many rows share the key", m)
				}
			}
			for b, want := range c.stats {
				checkStats(t, f.stats(t, o, events.PhasePreparsing, b), want[0], want[1], 0, want[2])
			}
		})
	}
}

// A row that is the first holder of one key but a later holder of another is
// not "the first" under use_first: it is skipped, naming the earlier row.
func TestPreparsingUseFirstAcrossKeys(t *testing.T) {
	f := newFixture(t)
	o := options(t, func(o *events.Options) { o.DuplicateHandling = "use_first" })
	f.input(t, o, events.PhasePreparsing,
		[]rows.Row{row(1, cust("a@x.io", "E1", "A")), row(2, cust("b@x.io", "E2", "B"))},
		[]rows.Row{row(3, cust("b@x.io", "E3", "B2")), row(4, cust("d@x.io", "E1", "D"))},
	)
	f.run(t, o, events.PhasePreparsing, 2)
	out := f.allOut(t, o, events.PhasePreparsing, 2)
	if _, ok := out[1]; !ok {
		t.Errorf("row 1 not kept")
	}
	if _, ok := out[2]; !ok {
		t.Errorf("row 2 not kept")
	}
	rej := f.allRejects(t, o, events.PhasePreparsing, 2)
	if r := rej[3]; r.Field != "email" || !strings.Contains(r.Message, "row 2") {
		t.Errorf("row 3: %+v, want a duplicate of row 2's email", r)
	}
	if r := rej[4]; r.Field != "external_id" || !strings.Contains(r.Message, "row 1") {
		t.Errorf("row 4: %+v, want a duplicate of row 1's external_id", r)
	}
}

// Unique rows all pass; the harness then hands every batch to transforming.
func TestPreparsingNoDuplicates(t *testing.T) {
	f := newFixture(t)
	o := options(t, nil)
	var batches [][]rows.Row
	n := int64(0)
	for b := 0; b < 3; b++ {
		var batch []rows.Row
		for i := 0; i < 4; i++ {
			n++
			batch = append(batch, row(n, cust(fmt.Sprintf("u%d@x.io", n), fmt.Sprintf("E%d", n), "U")))
		}
		batches = append(batches, batch)
	}
	f.input(t, o, events.PhasePreparsing, batches...)
	f.run(t, o, events.PhasePreparsing, 3)
	for b := 0; b < 3; b++ {
		checkStats(t, f.stats(t, o, events.PhasePreparsing, b), 4, 4, 0, 0)
		got := f.out(t, o, events.PhasePreparsing, b)
		if len(got) != len(batches[b]) {
			t.Fatalf("batch %d: %d rows out, want %d", b, len(got), len(batches[b]))
		}
		for i, r := range got {
			if want := batches[b][i]; r.Num != want.Num || !reflect.DeepEqual(r.Data, want.Data) {
				t.Errorf("batch %d: row %d %v at %d, want %d %v (rows as they came, in order)", b, r.Num, r.Data, i, want.Num, want.Data)
			}
		}
		if rej := f.rejects(t, o, events.PhasePreparsing, b); len(rej) != 0 {
			t.Errorf("batch %d: rejects %+v", b, rej)
		}
	}
	work := 0
	for _, s := range f.pub.msgs {
		if s == "inlet.work."+events.PhaseTransforming {
			work++
		}
	}
	if work != 3 {
		t.Errorf("%d transforming work messages, want 3", work)
	}
}

func keysOf[V any](m map[int64]V) []int64 {
	var out []int64
	for k := range m {
		out = append(out, k)
	}
	return out
}
